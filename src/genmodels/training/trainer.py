"""The model-agnostic training loop.

Nothing here knows which model it trains: each step calls `model.train_step(batch, ctx)`, which
does its own forward passes and calls `ctx.optimize(...)` for each optimiser step. The trainer
adds what every model needs: a resumable data order, explicit random streams, an EMA of
`model.ema_modules()`, a NaN/inf guard, logging, periodic sample grids and atomic checkpoints.

Launched by torchrun (a process group of W ranks, `genmodels.training.distributed`), every rank runs
this loop on its slice of each global batch; gradients are averaged in `ctx.optimize`,
floating-point buffers after each step, logged values when they are logged, and only rank 0
writes the run directory.

The hot path reads nothing back from the device: a step's logged values stay tensors, and the
NaN/inf guard (`genmodels.training.health`) keeps its findings on the device. Both are read only
at the loop's read points, the steps that log, write samples or a checkpoint, stop or end; a
divergence then raises TrainingDiverged naming the step where it began, before anything is
written, and the non-finite update itself was never applied (`ctx.optimize`).

The trainer knows the run directory (`genmodels.run`) but not the report: whoever wants a report
at the end passes `on_finish` (the `genmodels train` command and `genmodels.train()` pass
`genmodels.report.write_report`).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.config import RunConfig, TrainerConfig, dataclass_to_dict
from genmodels.data.dataset import Dataset
from genmodels.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingStopped
from genmodels.models.base import GenerativeModel, eval_mode
from genmodels.run.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    check_model,
    load_checkpoint,
    load_modules,
    load_optimizers,
    save_atomic,
)
from genmodels.run.layout import RunDir
from genmodels.run.seeds import derive_seed, global_rng_state, make_generator, private_global_rng
from genmodels.training import distributed
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream
from genmodels.training.ema import EMA
from genmodels.training.global_batch import GlobalBatchRandomness
from genmodels.training.hardware import rank_batch, resolve_precision, resolve_threads
from genmodels.training.health import Health
from genmodels.training.identity import check_resume
from genmodels.training.logging import MetricsLogger
from genmodels.training.lr_schedule import lr_factor, set_learning_rates
from genmodels.training.run_lock import run_writer
from genmodels.training.signals import StopSignals


@dataclass
class FitResult:
    """What `Trainer.fit` leaves behind."""

    step: int                       # completed optimisation steps
    values: dict[str, float]        # the last step's train_step() output
    run_dir: Path
    checkpoint: Path | None         # the latest checkpoint


class Trainer:
    """`Trainer(config).fit(model, dataset)` trains `model` and fills the run directory `config.out`.

    resume: continue from RUN_DIR/checkpoints/latest.pt (model, optimisers, EMA, step, data order,
            random streams) when it exists; without it an existing checkpoint is an error.
    override_identity: with resume, accept a seed, data, model config or precision other than the
            run's (recorded in metrics.jsonl); without it such a change is a ConfigError.

    on_finish: called with the run directory by rank 0 when training has finished and
            trainer.report is on, still holding the run's lock (e.g. genmodels.report.write_report);
            an exception there becomes a warning, never a lost run.

    While it trains, the process holds the run directory's lock (`genmodels.training.run_lock`), and
    SIGTERM/SIGINT stop it cleanly after the current step (`genmodels.training.signals`).
    """

    def __init__(self, config: RunConfig, *, resume: bool = False, override_identity: bool = False,
                 on_finish: Callable[[Path], object] | None = None):
        config.trainer.validate()
        if not config.out:
            raise ConfigError("out is empty: pass --out RUN_DIR")
        self.config = config
        self.run = RunDir(config.out)
        self.resume = resume
        self.override_identity = override_identity
        self.identity_changes: list[str] = []   # what a resume with override_identity changed
        self.stop = StopSignals()                # replaced by an active one while fit() runs
        self.on_finish = on_finish

    # -- set-up ---------------------------------------------------------------------------------

    def _start_checkpoint(self, spec_dict: dict) -> dict | None:
        """The checkpoint to resume from (checked against this model and data), or None."""
        run = self.run
        if not run.latest.exists():
            return None
        if not self.resume:
            raise ConfigError(f"{run.path} already holds a run ({run.latest.relative_to(run.path)}); pass --resume "
                              f"to continue it or choose another --out")
        ckpt = load_checkpoint(run.latest)  # on the CPU: RNG states must stay there
        if not self.override_identity:  # else the networks' shapes are still checked when loaded
            check_model(ckpt, self.config.model_name, dataclass_to_dict(self.config.model), run.latest,
                        defaults=dataclass_to_dict(type(self.config.model)()))
        if ckpt.get("spec") != spec_dict:
            raise CheckpointError(f"{run.latest}: written for data {ckpt.get('spec')}, not {spec_dict}")
        return ckpt

    def total_steps(self, dataset: Dataset) -> int:
        """trainer.steps, or trainer.epochs full passes of batch_size examples."""
        cfg = self.config.trainer
        if cfg.epochs > 0:
            return cfg.epochs * max(1, len(dataset) // cfg.batch_size)
        return cfg.steps

    # -- the loop -------------------------------------------------------------------------------

    def fit(self, model: GenerativeModel, dataset: Dataset) -> FitResult:
        """Train until `total_steps`; returns the final step. Raises TrainingDiverged (naming the step
        and the last good checkpoint, which stays intact) when a loss or a weight becomes NaN/inf.
        At the end rank 0 calls `on_finish(run_dir)` when trainer.report is on (a failing call is a
        warning, never a lost run).

        trainer.precision "auto" is resolved here (and recorded in config.toml, so a resumed run
        keeps it); trainer.threads sets torch's intra-op threads for the duration of the fit."""
        par = distributed.current()
        threads = resolve_threads(self.config.trainer.threads, _local_world_size(par))
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            result = self._locked_fit(model, dataset)
        finally:
            torch.set_num_threads(before)
        return result

    def _locked_fit(self, model: GenerativeModel, dataset: Dataset) -> FitResult:
        """_fit and on_finish as the run directory's one writer, stopping cleanly on a signal."""
        with run_writer(self.run.path, model.device), StopSignals() as self.stop:
            result = self._fit(model, dataset)
            if self.on_finish is not None and self.config.trainer.report and distributed.current().is_main:
                _finish(self.on_finish, result.run_dir)
        return result

    def _fit(self, model: GenerativeModel, dataset: Dataset) -> FitResult:
        cfg, seed = self.config.trainer, self.config.seed
        par = distributed.current()
        m_local = rank_batch(cfg, par)
        device = model.device
        spec = dataset.spec
        cfg.precision, why = resolve_precision(cfg.precision, device)
        self.identity_changes = check_resume(self.run, self.config, self.override_identity) if self.resume else []
        ckpt = self._start_checkpoint(spec.to_dict())
        accumulate = cfg.accumulate
        if par.is_main:
            micro = f", {accumulate} micro-batches per step" if accumulate > 1 else ""
            print(f"genmodels: precision {cfg.precision} ({why}), {torch.get_num_threads()} thread(s){micro}",
                  file=sys.stderr, flush=True)
        distributed.barrier(par)            # every rank has looked for a checkpoint before rank 0 writes
        if par.is_main:
            self.run.write_config(self.config, spec)
            self.run.remove_stale_temporaries()

        modules, optimizers = model.modules(), model.optimizers()
        if par.enabled and device.type == "cuda":
            sync_batchnorm(modules)
        prepare_modules(modules, cfg.channels_last, cfg.compile)
        ema_modules = model.ema_modules() if cfg.ema_decay > 0 else {}
        stream = DataStream(dataset, cfg.batch_size, make_generator(seed, "data"), device, rank=par.rank,
                            world_size=par.world_size, channels_last=cfg.channels_last)
        step_generator = make_generator(seed, "step", device)
        health = Health(device)
        weights = [p for m in modules.values() for p in m.parameters() if p.is_floating_point()]
        ctx = TrainContext(device=device, generator=step_generator, precision=cfg.precision,
                           grad_clip=cfg.grad_clip, next_batch=stream.next, dist=par, accumulate=accumulate,
                           health=health, bucket_mb=cfg.grad_bucket_mb, compression=cfg.grad_compression)
        ema = EMA(ema_modules, cfg.ema_decay, cfg.ema_warmup) if ema_modules else None
        step, global_state = 0, None
        if ckpt is not None:
            step = self._restore(ckpt, modules, optimizers, ema, stream, ctx, step_generator)
            global_state = ckpt["rng"]["global"] if par.is_main else None
        if par.enabled:
            distributed.broadcast_modules(modules)
        last_good = self.run.latest if ckpt is not None else None
        # per-example draws of train_step are made for the global batch and sliced (W > 1 only)
        randomness = (GlobalBatchRandomness(step_generator, m_local, par.rank, par.world_size) if par.enabled
                      else contextlib.nullcontext())
        # layers drawing from torch's global RNG (dropout) get a stream of their own on each rank
        global_seed = derive_seed(seed, "global" if par.is_main else f"global-rank{par.rank}-step{step}")

        total = self.total_steps(dataset)
        logger = (MetricsLogger(self.run.path, resume_step=step if ckpt is not None else None,
                                tensorboard=cfg.tensorboard) if par.is_main else None)
        if logger is not None and self.identity_changes:
            logger.event(step, "resumed with changes", changes="; ".join(self.identity_changes))
        values: dict[str, float] = {}
        started, cpu_started = time.perf_counter(), time.process_time()
        bar = _progress(total, step, cfg.progress and par.is_main, f"{self.config.model_name} {self.run.path.name}")
        try:
            # Dropout and other layers draw from torch's global RNG: give them the run's own stream.
            with private_global_rng(global_state, seed=global_seed, device=device):
                for m in modules.values():
                    m.train()
                while step < total:
                    ctx.step = step
                    ctx.reads = any(read_points(cfg, step + 1, total))   # a stop request may add one
                    factor = lr_factor(step, total, cfg.warmup_steps, cfg.lr_schedule)
                    set_learning_rates(optimizers, factor)
                    try:
                        if accumulate == 1:
                            with randomness:
                                out = model.train_step(stream.next(), ctx)
                        else:
                            out = _accumulated_step(model, stream.next(), ctx, step_generator, accumulate, par)
                    except TrainingDiverged as e:
                        raise TrainingDiverged(f"training diverged at step {step}: {e}; {_last_good(last_good)}",
                                               step=step) from None
                    step_values = {name: v.detach() if isinstance(v, torch.Tensor) else v for name, v in out.items()}
                    health.record_values(step, step_values)
                    health.record_weights(step, weights)
                    if par.enabled:
                        distributed.average_buffers(modules, par.world_size)
                    if ema is not None:
                        ema.update(ema_modules)
                    step += 1
                    bar.update(1)
                    stop = self.stop.requested(device) and step < total  # the same on every rank
                    keep, logs, samples, saves = read_points(cfg, step, total)
                    saves = saves or stop
                    if not (logs or samples or saves):
                        continue                     # the hot path: nothing was read back from the device
                    try:
                        health.check(par, modules)   # a read point: every rank, the same steps
                    except TrainingDiverged as e:
                        raise TrainingDiverged(f"training diverged at step {e.step}: {e}; {_last_good(last_good)}",
                                               step=e.step) from None
                    values = (distributed.average_values(step_values, par.world_size, device) if par.enabled
                              else _host_values(step_values))
                    bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                    if not par.is_main:
                        if saves:
                            last_good = self.run.latest      # written by rank 0 at this step
                        if stop:
                            break
                        continue
                    if logs:
                        logger.log(step, values, epoch=stream.epoch, time=round(time.perf_counter() - started, 3),
                                   cpu_time=round(time.process_time() - cpu_started, 3),
                                   lr_factor=round(factor, 6))
                    if samples:
                        self._write_samples(model, ema, ema_modules, dataset, step, device)
                    if saves:
                        state = self._state(step, spec.to_dict(), modules, optimizers, ema, stream, ctx,
                                            step_generator, global_rng_state(device))
                        save_atomic(state, self.run.latest)
                        last_good = self.run.latest
                        if keep:
                            save_atomic(state, self.run.checkpoint_at(step))
                    if stop:
                        logger.event(step, "stopped", signal=self.stop.name)
                        break
        finally:
            ctx.close()
            bar.close()
            if logger is not None:
                logger.save_curves(self.run.curves)
                logger.close()
        distributed.barrier(par)            # the last checkpoint is on disk before any rank returns
        if self.stop.signum is not None and step < total:
            raise TrainingStopped(f"stopped by {self.stop.name} after step {step} of {total}; {self.run.latest} "
                                  f"holds that step: continue with --resume", self.stop.signum, step)
        return FitResult(step=step, values=values, run_dir=self.run.path, checkpoint=last_good)

    # -- samples and checkpoints ----------------------------------------------------------------

    def _write_samples(self, model: GenerativeModel, ema: EMA | None, ema_modules: dict, dataset: Dataset,
                       step: int, device: torch.device) -> Path:
        """samples/step_XXXXXXX.png from the EMA weights, always with the same noise (`samples` stream),
        so grids are comparable across steps; training randomness is not touched."""
        from genmodels.viz import save_grid, save_scatter

        seed, n = self.config.seed, self.config.trainer.sample_n
        swap = ema.swapped_in(ema_modules) if ema is not None else contextlib.nullcontext()
        with eval_mode(*model.modules().values()), torch.no_grad(), \
                private_global_rng(seed=derive_seed(seed, "samples-global"), device=device), swap:
            # a model may name cheaper sampler settings for these previews (e.g. few-step solvers)
            x = model.sample(n, generator=make_generator(seed, "samples", device), **model.preview_options())
        path = self.run.sample_at(step)
        if dataset.kind == "image":
            return save_grid(x, path, scale=max(1, 64 // x.shape[-1]))
        reference = dataset.x[:2000, :2]
        return save_scatter(x[:, :2], path, reference=reference, modes=dataset.modes,
                            title=f"{self.config.model_name}, step {step}")

    def _state(self, step, spec_dict, modules, optimizers, ema, stream, ctx, step_generator, global_state) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model_name": self.config.model_name,
            "model_config": dataclass_to_dict(self.config.model),
            "spec": spec_dict,
            "seed": self.config.seed,
            "step": step,
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "ema": ema.state_dict() if ema is not None else None,
            "scalers": ctx.scaler_states(optimizers),
            "data": stream.state_dict(),
            "rng": {"step": step_generator.get_state(), "global": global_state},
        }

    def _restore(self, ckpt, modules, optimizers, ema, stream, ctx, step_generator) -> int:
        """Load everything a checkpoint holds; returns its step."""
        path = self.run.latest
        load_modules(modules, ckpt["modules"], path)
        load_optimizers(optimizers, ckpt["optimizers"], path)
        if ema is not None:
            if ckpt.get("ema") is None:
                raise CheckpointError(f"{path}: holds no EMA but trainer.ema_decay is {ema.decay}")
            try:
                ema.load_state_dict(ckpt["ema"])
            except (KeyError, RuntimeError) as e:
                raise CheckpointError(f"{path}: EMA does not match the model: {e}") from None
        ctx.load_scaler_states(optimizers, ckpt.get("scalers", {}))
        stream.load_state_dict(ckpt["data"])
        step_generator.set_state(ckpt["rng"]["step"])
        return int(ckpt["step"])


def _accumulated_step(model: GenerativeModel, batch: tuple[torch.Tensor, torch.Tensor], ctx: TrainContext,
                      generator: torch.Generator, k: int,
                      par: distributed.DistInfo) -> dict[str, float | torch.Tensor]:
    """One optimisation step as k micro-batches of this rank's batch (trainer.accumulate = k).

    Micro-batch j plays the part that rank j would play under data parallelism: it holds examples
    j*m/k .. (j+1)*m/k - 1 of the batch, its per-example noise is its slice of the draw for the
    whole global batch (`GlobalBatchRandomness`, with the generator rewound before each micro-batch,
    so every micro-batch sees the same global draw and the generator ends where one whole-batch
    step leaves it), and `ctx.optimize` backpropagates loss / k into the summed gradients and
    steps after the last one. The update equals that of one batch up to floating-point rounding.
    Returns the logged values averaged over the micro-batches (in float64; tensors stay on the device)."""
    x, y = batch
    micro = x.shape[0] // k
    start_state = generator.get_state()
    totals: dict[str, float | torch.Tensor] = {}
    ctx.begin_accumulation(x)
    try:
        for j in range(k):
            generator.set_state(start_state)
            ctx.micro_index = j
            part = (x[j * micro:(j + 1) * micro], y[j * micro:(j + 1) * micro])
            with GlobalBatchRandomness(generator, micro, par.rank * k + j, par.world_size * k):
                out = model.train_step(part, ctx)
            for name, v in out.items():
                v = v.detach().double() if isinstance(v, torch.Tensor) else float(v)
                totals[name] = totals.get(name, 0.0) + v / k
    finally:
        ctx.end_accumulation()
    return totals


def read_points(cfg: TrainerConfig, step: int, total: int) -> tuple[bool, bool, bool, bool]:
    """(keep, logs, samples, saves) after `step` of `total` steps: whether it is kept as a numbered
    checkpoint, logged, sampled, checkpointed (a stop request adds a checkpoint). Any of them is a
    read point, where the step's values are read back from the device."""
    keep = cfg.keep_every > 0 and step % cfg.keep_every == 0
    logs = step % cfg.log_every == 0 or step == total
    samples = cfg.sample_every > 0 and (step % cfg.sample_every == 0 or step == total)
    saves = keep or step % cfg.checkpoint_every == 0 or step == total
    return keep, logs, samples, saves


def _host_values(values: dict[str, float | torch.Tensor]) -> dict[str, float]:
    """The logged values as Python floats, with one device-to-host copy per device for the tensors."""
    read: dict[str, float] = {}
    for device in {v.device for v in values.values() if isinstance(v, torch.Tensor)}:
        names = [k for k, v in values.items() if isinstance(v, torch.Tensor) and v.device == device]
        read.update(zip(names, torch.stack([values[k].reshape(()) for k in names]).tolist(), strict=True))
    return {k: read[k] if k in read else float(v) for k, v in values.items()}


def _local_world_size(par: distributed.DistInfo) -> int:
    """Processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    import os

    return int(os.environ.get("LOCAL_WORLD_SIZE", par.world_size)) if par.enabled else 1


def sync_batchnorm(modules: dict[str, torch.nn.Module]) -> None:
    """Under data parallelism on CUDA, batch-norm layers normalise with the statistics of the global
    batch (SyncBatchNorm, NCCL only), as in one process. The layers are replaced inside each network
    (the networks themselves, their parameters and so the optimisers, stay the same objects)."""
    for m in modules.values():
        if not isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(m)


def prepare_modules(modules: dict[str, torch.nn.Module], channels_last: bool, compile: bool) -> None:
    """In place (the model keeps its references): channels-last weights for the 4-D convolution
    kernels, and torch.compile of each network's forward (nn.Module.compile, so state dicts and
    checkpoints keep their keys)."""
    for m in modules.values():
        if channels_last:
            m.to(memory_format=torch.channels_last)
        if compile and any(True for _ in m.parameters()):
            m.compile()


def _finish(on_finish: Callable[[Path], object], run_dir: Path) -> None:
    """on_finish(run_dir) (e.g. writing RUN_DIR/report.html); any failure becomes a warning (the run
    itself is complete and checkpointed)."""
    try:
        on_finish(run_dir)
    except Exception as e:  # a report must never lose a finished run
        warnings.warn(f"{run_dir}: training finished but the report could not be written: "
                      f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=3)


def _last_good(path: Path | None) -> str:
    return f"the last good checkpoint is {path}" if path is not None else "no checkpoint had been written yet"


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, smoothing=0.1)
