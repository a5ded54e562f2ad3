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
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genmodels.config import RunConfig, dataclass_to_dict
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingStopped
from genmodels.models.base import GenerativeModel, eval_mode
from genmodels.run.checkpoint import check_model, load_checkpoint, save_atomic
from genmodels.run.layout import RunDir
from genmodels.run.seeds import derive_seed, global_rng_state, make_generator, private_global_rng
from genmodels.training import distributed
from genmodels.training.accumulate import accumulated_step
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream
from genmodels.training.ema import EMA
from genmodels.training.global_batch import GlobalBatchRandomness
from genmodels.training.hardware import rank_batch, resolve_precision, resolve_threads
from genmodels.training.health import Health
from genmodels.training.identity import check_resume
from genmodels.training.logging import MetricsLogger
from genmodels.training.lr_schedule import lr_factor, set_learning_rates
from genmodels.training.posthoc_ema import PowerEMA, flat_state
from genmodels.training.prepare import prepare_modules, sync_batchnorm
from genmodels.training.read_points import host_values, read_points
from genmodels.training.run_lock import run_writer
from genmodels.training.signals import StopSignals
from genmodels.training.state import TrainingState
from genmodels.viz import save_grid, save_scatter


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
        """Set up (or resume) the run, then train step by step until `total_steps`."""
        par = distributed.current()
        ckpt = self._begin(model.device, dataset.spec, par)
        state = self._training_state(model, dataset, par)
        global_state = None
        if ckpt is not None:
            state.restore(ckpt, self.run.latest)
            global_state = ckpt["rng"]["global"] if par.is_main else None
        if par.enabled:
            distributed.broadcast_modules(state.modules)
        loop = self._open_loop(dataset, state.step, resumed=ckpt is not None, par=par)
        # layers drawing from torch's global RNG (dropout) get a stream of their own on each rank
        stream_name = "global" if par.is_main else f"global-rank{par.rank}-step{state.step}"
        global_seed = derive_seed(self.config.seed, stream_name)
        try:
            # Dropout and other layers draw from torch's global RNG: give them the run's own stream.
            with private_global_rng(global_state, seed=global_seed, device=model.device):
                self._train(model, dataset, state, loop, par)
        finally:
            loop.close(state.ctx, self.run.curves)
        distributed.barrier(par)            # the last checkpoint is on disk before any rank returns
        if self.stop.signum is not None and state.step < loop.total:
            raise TrainingStopped(f"stopped by {self.stop.name} after step {state.step} of {loop.total}; "
                                  f"{self.run.latest} holds that step: continue with --resume", self.stop.signum,
                                  state.step)
        return FitResult(step=state.step, values=loop.values, run_dir=self.run.path, checkpoint=loop.last_good)

    def _begin(self, device: torch.device, spec: DataSpec, par: distributed.DistInfo) -> dict | None:
        """Resolve the precision, check a resume, write config.toml (rank 0); returns the checkpoint
        to resume from, or None."""
        cfg = self.config.trainer
        rank_batch(cfg, par)                # ConfigError before anything is written
        cfg.precision, why = resolve_precision(cfg.precision, device)
        self.identity_changes = check_resume(self.run, self.config, self.override_identity) if self.resume else []
        ckpt = self._start_checkpoint(spec.to_dict())
        if par.is_main:
            micro = f", {cfg.accumulate} micro-batches per step" if cfg.accumulate > 1 else ""
            print(f"genmodels: precision {cfg.precision} ({why}), {torch.get_num_threads()} thread(s){micro}",
                  file=sys.stderr, flush=True)
        distributed.barrier(par)            # every rank has looked for a checkpoint before rank 0 writes
        if par.is_main:
            self.run.write_config(self.config, spec)
            self.run.remove_stale_temporaries()
        return ckpt

    def _training_state(self, model: GenerativeModel, dataset: Dataset, par: distributed.DistInfo) -> TrainingState:
        """The networks prepared for training, the data order, the step context and the EMA, fresh."""
        cfg, seed, device = self.config.trainer, self.config.seed, model.device
        modules, optimizers = model.modules(), model.optimizers()
        if par.enabled and device.type == "cuda":
            sync_batchnorm(modules)
        prepare_modules(modules, cfg.channels_last, cfg.compile)
        ema_modules = model.ema_modules() if cfg.ema_decay > 0 or cfg.ema_sigma_rels else {}
        stream = DataStream(dataset, cfg.batch_size, make_generator(seed, "data"), device, rank=par.rank,
                            world_size=par.world_size, channels_last=cfg.channels_last)
        step_generator = make_generator(seed, "step", device)
        ctx = TrainContext(device=device, generator=step_generator, precision=cfg.precision,
                           grad_clip=cfg.grad_clip, next_batch=stream.next, dist=par, accumulate=cfg.accumulate,
                           health=Health(device), bucket_mb=cfg.grad_bucket_mb, compression=cfg.grad_compression)
        ema = EMA(ema_modules, cfg.ema_decay, cfg.ema_warmup) if ema_modules and cfg.ema_decay > 0 else None
        power = PowerEMA(cfg.ema_sigma_rels, flat_state(ema_modules)) if cfg.ema_sigma_rels else None
        return TrainingState(modules=modules, optimizers=optimizers, ema_modules=ema_modules, ema=ema, stream=stream,
                             ctx=ctx, generator=step_generator, power_ema=power)

    def _open_loop(self, dataset: Dataset, step: int, *, resumed: bool, par: distributed.DistInfo) -> _Loop:
        """The loop's bookkeeping from `step`: the metrics logger (rank 0), the progress bar, the clocks."""
        cfg = self.config.trainer
        total = self.total_steps(dataset)
        logger = (MetricsLogger(self.run.path, resume_step=step if resumed else None, tensorboard=cfg.tensorboard)
                  if par.is_main else None)
        if logger is not None and self.identity_changes:
            logger.event(step, "resumed with changes", changes="; ".join(self.identity_changes))
        bar = _progress(total, step, cfg.progress and par.is_main, f"{self.config.model_name} {self.run.path.name}")
        return _Loop(total=total, logger=logger, bar=bar, last_good=self.run.latest if resumed else None,
                     started=time.perf_counter(), cpu_started=time.process_time())

    def _train(self, model: GenerativeModel, dataset: Dataset, state: TrainingState, loop: _Loop,
               par: distributed.DistInfo) -> None:
        """Optimisation steps until loop.total or a stop request; the read points log, sample and save."""
        cfg, device = self.config.trainer, model.device
        # per-example draws of train_step are made for the global batch and sliced (W > 1 only)
        randomness = (GlobalBatchRandomness(state.generator, rank_batch(cfg, par), par.rank, par.world_size)
                      if par.enabled else contextlib.nullcontext())
        weights = [p for m in state.modules.values() for p in m.parameters() if p.is_floating_point()]
        health = state.ctx.health
        for m in state.modules.values():
            m.train()
        while state.step < loop.total:
            factor = lr_factor(state.step, loop.total, cfg.warmup_steps, cfg.lr_schedule)
            step_values = self._step(model, state, randomness, factor, loop, par)
            health.record_values(state.step, step_values)
            health.record_weights(state.step, weights)
            if par.enabled:
                distributed.average_buffers(state.modules, par.world_size)
            if state.ema is not None:
                state.ema.update(state.ema_modules)
            if state.power_ema is not None:                # Karras et al. 2024: steps count from 1
                state.power_ema.update(state.step + 1, flat_state(state.ema_modules))
            state.step += 1
            loop.bar.update(1)
            stop = self.stop.requested(device) and state.step < loop.total  # the same on every rank
            keep, logs, samples, saves = read_points(cfg, state.step, loop.total)
            if not (logs or samples or saves or stop):
                continue                     # the hot path: nothing was read back from the device
            if self._read_point(model, dataset, state, loop, step_values, (keep, logs, samples, saves or stop),
                                factor, par, stop):
                break

    def _step(self, model: GenerativeModel, state: TrainingState, randomness, factor: float, loop: _Loop,
              par: distributed.DistInfo) -> dict[str, float | torch.Tensor]:
        """One optimisation step (trainer.accumulate micro-batches); its values, tensors left on the device."""
        cfg, ctx = self.config.trainer, state.ctx
        ctx.step = state.step
        ctx.reads = any(read_points(cfg, state.step + 1, loop.total))   # a stop request may add one
        set_learning_rates(state.optimizers, factor)
        try:
            if cfg.accumulate == 1:
                with randomness:
                    out = model.train_step(state.stream.next(), ctx)
            else:
                out = accumulated_step(model, state.stream.next(), ctx, state.generator, cfg.accumulate, par)
        except TrainingDiverged as e:
            raise TrainingDiverged(f"training diverged at step {state.step}: {e}; {_last_good(loop.last_good)}",
                                   step=state.step) from None
        return {name: v.detach() if isinstance(v, torch.Tensor) else v for name, v in out.items()}

    def _read_point(self, model: GenerativeModel, dataset: Dataset, state: TrainingState, loop: _Loop,
                    step_values: dict, points: tuple[bool, bool, bool, bool], factor: float,
                    par: distributed.DistInfo, stop: bool) -> bool:
        """After a step that logs, samples, saves or stops: check the run's health (every rank), read the
        values back, then (rank 0) log, write samples and checkpoints. Returns whether to stop."""
        keep, logs, samples, saves = points
        step, device = state.step, model.device
        try:
            state.ctx.health.check(par, state.modules)   # a read point: every rank, the same steps
        except TrainingDiverged as e:
            raise TrainingDiverged(f"training diverged at step {e.step}: {e}; {_last_good(loop.last_good)}",
                                   step=e.step) from None
        loop.values = (distributed.average_values(step_values, par.world_size, device) if par.enabled
                       else host_values(step_values))
        loop.bar.set_postfix({k: f"{v:.4g}" for k, v in loop.values.items()}, refresh=False)
        if not par.is_main:
            if saves:
                loop.last_good = self.run.latest      # written by rank 0 at this step
            return stop
        assert loop.logger is not None               # rank 0 logs
        if logs:
            loop.logger.log(step, loop.values, epoch=state.stream.epoch,
                            time=round(time.perf_counter() - loop.started, 3),
                            cpu_time=round(time.process_time() - loop.cpu_started, 3), lr_factor=round(factor, 6))
        if samples:
            self._write_samples(model, state.ema, state.ema_modules, dataset, step, device)
        if saves:
            self._save(state, dataset.spec, keep, device)
            loop.last_good = self.run.latest
        if stop:
            loop.logger.event(step, "stopped", signal=self.stop.name)
        return stop

    # -- samples and checkpoints ----------------------------------------------------------------

    def _write_samples(self, model: GenerativeModel, ema: EMA | None, ema_modules: dict, dataset: Dataset,
                       step: int, device: torch.device) -> Path:
        """samples/step_XXXXXXX.png from the EMA weights, always with the same noise (`samples` stream),
        so grids are comparable across steps; training randomness is not touched."""

        seed, n = self.config.seed, self.config.trainer.sample_n
        swap = ema.swapped_in(ema_modules) if ema is not None else contextlib.nullcontext()
        with eval_mode(*model.modules().values()), torch.no_grad(), \
                private_global_rng(seed=derive_seed(seed, "samples-global"), device=device), swap:
            # a model may name cheaper sampler settings for these previews (e.g. few-step solvers)
            x = model.sample(n, model.preview_options(), generator=make_generator(seed, "samples", device))
        path = self.run.sample_at(step)
        if dataset.kind == "image":
            return save_grid(x, path, scale=max(1, 64 // x.shape[-1]))
        reference = dataset.x[:2000, :2]
        return save_scatter(x[:, :2], path, reference=reference, modes=dataset.modes,
                            title=f"{self.config.model_name}, step {step}")

    def _save(self, state: TrainingState, spec: DataSpec, keep: bool, device: torch.device) -> None:
        """checkpoints/latest.pt (and a numbered copy when `keep`), written atomically."""
        header = {"model_name": self.config.model_name, "model_config": dataclass_to_dict(self.config.model),
                  "spec": spec.to_dict(), "seed": self.config.seed}
        checkpoint = state.save(header, global_rng_state(device))
        save_atomic(checkpoint, self.run.latest)
        if state.power_ema is not None:                    # the averages post-hoc EMA is rebuilt from
            state.power_ema.write_snapshot(self.run.ema_snapshot_at(state.step), state.step)
        if keep:
            save_atomic(checkpoint, self.run.checkpoint_at(state.step))


@dataclass
class _Loop:
    """The bookkeeping of one fit around its TrainingState: where it ends, what it logs and has read."""

    total: int                      # the step it trains to
    logger: MetricsLogger | None    # rank 0's metrics.jsonl
    bar: Any                        # the progress bar (tqdm)
    last_good: Path | None          # the latest checkpoint written
    started: float                  # perf_counter() at the start
    cpu_started: float              # process_time() at the start
    values: dict[str, float] = field(default_factory=dict)   # the last values read back

    def close(self, ctx: TrainContext, curves: Path) -> None:
        """Release the step context, close the bar, draw the curves and close the log."""
        ctx.close()
        self.bar.close()
        if self.logger is not None:
            self.logger.save_curves(curves)
            self.logger.close()


def _local_world_size(par: distributed.DistInfo) -> int:
    """Processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""

    return int(os.environ.get("LOCAL_WORLD_SIZE", par.world_size)) if par.enabled else 1


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
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, smoothing=0.1)
