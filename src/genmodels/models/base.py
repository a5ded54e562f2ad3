"""The contract between a model family and the rest of genmodels.

    trainer ──train_step(batch, ctx)──> model <──sample(n, options, *, generator)── genmodels.sampling
                                           │  <──evaluate(metric, data, options, *, n, ...)── genmodels.evaluation
                 ctx: StepContext          │  modules(), optimizers(), ema_modules(): its state
                                           │  sampling_modules(): the networks sampling needs
                                           │  sample_options, evaluate_options: the options dataclasses
                                           │  metric_names, preview_options(), views(), ...

Every family subclasses `GenerativeModel`: four methods are abstract (train_step, sample,
modules, optimizers); everything else has a default that a family overrides where it has more to
say. The trainer, the CLI, the report and the metrics call these methods directly and never
probe a model for what it has. Optional tasks (inpainting, image-to-image) are declared in
`capabilities` and asked with `supports(task)`.

Nothing in `genmodels.training` knows which model it trains: a model supplies its own training
step, sampler and state. Each family lives in its own module under `genmodels.models` and is
registered in `genmodels.models.registry` (or with `genmodels.register_model`).
"""

from __future__ import annotations

import abc
import contextlib
import itertools
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError, choice_error

# Optional tasks a family may declare in `capabilities`, and the method each one promises.
TASKS = {
    "inpaint": "inpaint(x_known, mask, *, generator, options): fill the pixels where mask = 0 (RePaint)",
    "img2img": "img2img(x, strength, *, generator, options): edit images x (SDEdit)",
}
VIEW_FRAMES = 10   # frames per row of a view that is a batch of frames (DDPM's denoising strip)


class StepContext(Protocol):
    """What the trainer hands to `train_step`: randomness, the step number, and the one way to
    take an optimiser step (which applies gradient clipping, AMP grad scaling and DDP).
    `genmodels.training.context.TrainContext` implements it; the tests' `FakeContext` too."""

    step: int                    # global step being computed (0-based)
    reads: bool                  # whether this step's logged values are read (a log, sample or checkpoint
    #                              step): host-side diagnostics (e.g. InfoGAN's code accuracy) may be left
    #                              out of train_step's values when False, so the step reads nothing back
    generator: torch.Generator   # the run's explicit RNG for noise, timesteps, codes (on model device)
    device: torch.device

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op context in fp32)."""
        ...

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 modules: list[nn.Module] | None = None) -> None:
        """zero_grad, backward (scaled under fp16), clip the gradients of `modules`' parameters
        (or the optimizer's parameters) to the configured norm, and step; a step whose loss or
        gradients are not finite is not applied (and the trainer stops, naming it)."""
        ...

    def global_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The whole global minibatch gathered over data-parallel ranks (x itself in one process), for
        statistics that must not depend on the number of processes. Per-example random draws from
        `generator` must put the example index first, so that each rank keeps its slice of the
        global draw."""
        ...

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh data minibatch (x, y) from the training data (used by Algorithm 2.1 for the
        k discriminator steps, each of which sees a new minibatch)."""
        ...


@dataclass
class NoSampleOptions:
    """The sample options of a family that has none."""


@dataclass
class NoEvaluateOptions:
    """The evaluation options of a family that has none."""


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """The modules (and every submodule) in eval mode inside the block (batch norm on its running
    statistics, no dropout); each one's previous mode is restored after, even on an error."""
    modes = [(m, m.training) for net in modules for m in net.modules()]
    try:
        for net in modules:
            net.eval()
        yield
    finally:
        for m, mode in modes:
            m.training = mode


class GenerativeModel(abc.ABC):
    """A trainable generative model over images (B, C, H, W) in [-1, 1] or points (B, D).

    A family is built as `Family(config, spec, device)`: `config` its own config dataclass (with
    data-dependent defaults resolved: the constructor stores the values it used in
    `self.config`), `spec` the DataSpec of the data, `device` where its networks live. It owns
    its networks and optimisers; its state is theirs (`modules()`, `optimizers()`), tensors and
    plain data only.
    """

    sample_options: ClassVar[type] = NoSampleOptions       # the options dataclass of `sample(n, options)`
    evaluate_options: ClassVar[type] = NoEvaluateOptions   # the options dataclass of `evaluate(metric, data, options)`
    metric_names: ClassVar[tuple[str, ...]] = ()        # model-specific metrics of `evaluate`
    capabilities: ClassVar[tuple[str, ...]] = ()        # optional tasks (TASKS) the family implements

    config: Any
    spec: DataSpec
    _device: torch.device | None = None

    # -- what every family implements ---------------------------------------------------------

    @abc.abstractmethod
    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor],
                   ctx: StepContext) -> dict[str, float | torch.Tensor]:
        """One training iteration on `batch` = (x, y) (y int64 labels or -1), taking its optimiser
        steps through `ctx.optimize` and drawing its noise from `ctx.generator`; returns the
        scalars to log (losses, diagnostics): 0-dim tensors, which the trainer reads back only when
        it logs them (a float costs a device synchronisation every step on a GPU), or floats."""

    @abc.abstractmethod
    def sample(self, n: int, options: Any = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples in data space: images (n, C, H, W) in [-1, 1] or points (n, D). `options`: an
        instance of the family's `sample_options` dataclass (None: its defaults; `options_of` reads
        it). All randomness comes from `generator` (the same generator state gives the same samples)."""

    def options_of(self, options: Any, kind: str = "sample") -> Any:
        """`options` (an instance of the family's `sample_options`, or of `evaluate_options` for kind
        "evaluate"), or that dataclass's defaults for None; ConfigError for an instance of another class."""
        cls = self.sample_options if kind == "sample" else self.evaluate_options
        if options is None:
            return cls()
        if not isinstance(options, cls):
            raise ConfigError(f"unknown {type(self).__name__} {kind} options {type(options).__name__}: "
                              f"expected a {cls.__name__}")
        return options

    @abc.abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """All networks, by name (for checkpoints, DDP wrapping, device moves)."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """All optimisers, by name (for checkpoints)."""

    # -- defaults a family overrides where it has more to say ---------------------------------

    def ema_modules(self) -> dict[str, nn.Module]:
        """The sub-networks whose weights the trainer keeps an exponential moving average of
        (a subset of modules(), e.g. the denoiser or the generator). Default: none."""
        return {}

    def sampling_modules(self) -> list[str]:
        """The names (keys of modules()) of the networks that `sample()` and the sample-based
        evaluations (FD, KID, ...) need, and the model-specific metrics of `evaluate` too: what a zoo
        entry exported with `--networks sampling` stores, the other networks keeping their fresh
        initialisation when it is loaded. A network needed only to train (a GAN's discriminator)
        is left out. Default: every network of modules()."""
        return list(self.modules())

    def evaluate(self, metric: str, data: Dataset, options: Any = None, *, n: int | None = None,
                 batch_size: int | None = None, k: int | None = None, generator: torch.Generator | None = None,
                 progress: bool = False) -> dict[str, float]:
        """Model-specific metric `metric` (one of `metric_names`: likelihood bounds, code accuracy)
        on `data`, as {name: value}. `options`: an instance of the family's `evaluate_options` (None:
        its defaults). The keywords are what `genmodels evaluate` gives every family: n, the examples
        to measure (None: all of `data`); batch_size (None: the family's); k, the importance samples
        of a likelihood estimate (None: the family's default); the generator; progress bars. A
        family reads the ones its metrics use. The default knows no metric and refuses with a ConfigError."""
        self.check_metric(metric)
        raise NotImplementedError(f"{type(self).__name__} lists metric {metric!r} in metric_names but does not "
                                  f"implement evaluate()")

    def check_metric(self, metric: str) -> None:
        """ConfigError unless `metric` is one of `metric_names` (listing them)."""
        if metric in self.metric_names:
            return
        if not self.metric_names:
            raise ConfigError(f"{type(self).__name__} has no model-specific metrics (asked for {metric!r})")
        raise choice_error(f"{type(self).__name__} metric", metric, self.metric_names)

    def recommended_sample_options(self) -> dict[str, Any]:
        """{field: value} of `sample_options` that a new run records as its sampling defaults (the
        [sample] table of config.toml, copied to a zoo card on export): the sampler and steps that
        measured best per network evaluation for this kind of data. Default: none (the dataclass's
        defaults, e.g. DDPM's Algorithm 4.2)."""
        return {}

    def preview_options(self) -> Any:
        """The sample options (an instance of `sample_options`) of the trainer's periodic sample grids,
        e.g. a few-step solver. Default: the dataclass's defaults."""
        return self.sample_options()

    def sample_nrow(self, options: Any = None) -> int | None:
        """Images per row when tiling `sample(n, options)`, for samples that form a fixed layout
        (traversal grids); None (the default) lets the grid be near-square."""
        return None

    def views(self, generator: torch.Generator | None = None, data: Dataset | None = None) -> dict[str, torch.Tensor]:
        """The family's own pictures for the run report, {name: tensor in [-1, 1]}: either one
        picture (1, C, H, W) or rows of VIEW_FRAMES frames (rows * VIEW_FRAMES, C, H, W). `data`:
        real examples to show (e.g. a reloaded run's test split), else what the model saw in
        training. Default: none."""
        return {}

    def supports(self, task: str) -> bool:
        """Whether the family implements the optional task (a key of TASKS), i.e. lists it in
        `capabilities`; ConfigError for a task genmodels does not know."""
        if task not in TASKS:
            raise choice_error("model task", task, TASKS)
        return task in self.capabilities

    @property
    def device(self) -> torch.device:
        """Where the networks live: the device the model was built for (`self.device = ...` in the
        constructor), else that of its first parameter or buffer, else the CPU."""
        if self._device is not None:
            return self._device
        for m in self.modules().values():
            for t in itertools.chain(m.parameters(), m.buffers()):
                return t.device
        return torch.device("cpu")

    @device.setter
    def device(self, value: torch.device | str) -> None:
        self._device = torch.device(value)
