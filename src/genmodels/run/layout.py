"""The layout of a run directory: every file name is defined here, once.

    RUN_DIR/
      config.toml              the RunConfig plus a [spec] table (the DataSpec the nets were built for)
      metrics.jsonl            one JSON object per logged step (genmodels.run.metrics_file)
      losses.png               the logged series against the step
      checkpoints/latest.pt    (and step_XXXXXXX.pt every trainer.keep_every steps; genmodels.run.checkpoint)
      samples/step_XXXXXXX.png the trainer's periodic sample grids
      views/NAME.png           the family's own pictures (genmodels.report.views)
      ema/step_XXXXXXX.safetensors  the power-function EMAs at each checkpoint (trainer.ema_sigma_rels;
                               genmodels.training.posthoc_ema), rebuilt at another width by `genmodels ema`
      checkpoints/posthoc_sigmaS_step_XXXXXXX.pt  a checkpoint whose EMA is such a rebuilt average
      report.html              the page of `genmodels report` (genmodels.report)
      eval.json                `genmodels evaluate RUN_DIR --json > RUN_DIR/eval.json`, shown by the report
      tensorboard/             event files, when tensorboard is installed
      .lock                    held by the one process writing the run (genmodels.training.run_lock)

Every file is replaced atomically (genmodels.atomic) and metrics.jsonl only grows by whole lines.
"""

from __future__ import annotations

from pathlib import Path

from genmodels.atomic import remove_stale_temporaries
from genmodels.config import RunConfig, load_toml
from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError

CONFIG = "config.toml"
METRICS = "metrics.jsonl"
CURVES = "losses.png"
CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
SAMPLES = "samples"
VIEWS = "views"
EMA_SNAPSHOTS = "ema"
REPORT = "report.html"
EVAL = "eval.json"
TENSORBOARD = "tensorboard"
LOCK = ".lock"


def step_name(step: int, suffix: str) -> str:
    """step_XXXXXXX<suffix>: the name of a kept checkpoint (.pt) or a sample grid (.png) of `step`."""
    return f"step_{step:07d}{suffix}"


class RunDir:
    """The paths of one run directory, and its config.toml."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / CONFIG
        self.metrics = self.path / METRICS
        self.curves = self.path / CURVES
        self.checkpoints = self.path / CHECKPOINTS
        self.latest = self.checkpoints / LATEST
        self.samples = self.path / SAMPLES
        self.views = self.path / VIEWS
        self.ema_snapshots = self.path / EMA_SNAPSHOTS
        self.report = self.path / REPORT
        self.eval = self.path / EVAL
        self.tensorboard = self.path / TENSORBOARD
        self.lock = self.path / LOCK

    def checkpoint_at(self, step: int) -> Path:
        return self.checkpoints / step_name(step, ".pt")

    def ema_snapshot_at(self, step: int) -> Path:
        return self.ema_snapshots / step_name(step, ".safetensors")

    def posthoc_checkpoint(self, sigma_rel: float, step: int) -> Path:
        return self.checkpoints / step_name(step, ".pt").replace("step_", f"posthoc_sigma{sigma_rel:g}_step_")

    def sample_at(self, step: int) -> Path:
        return self.samples / step_name(step, ".png")

    def remove_stale_temporaries(self) -> None:
        """Delete the half-written temporaries a crash or a kill during a write left behind (in the run
        folder, checkpoints/, samples/ and views/; never a finished file, nor one being written now)."""

        for folder in (self.path, self.checkpoints, self.samples, self.views, self.ema_snapshots):
            remove_stale_temporaries(folder)

    def write_config(self, config: RunConfig, spec: DataSpec) -> None:
        """config.toml: the run config and the [spec] table of the data the networks are built for."""
        self.path.mkdir(parents=True, exist_ok=True)
        config.save_toml(self.config, extra={"spec": spec.to_dict()})

    def read_config(self) -> tuple[RunConfig, DataSpec]:
        """The run's config and data spec; ConfigError if this is not a run directory."""
        if not self.config.is_file():
            raise ConfigError(f"{self.path}: not a run directory (no {CONFIG})")
        config, extra = load_toml(self.config)
        if "spec" not in extra:
            raise ConfigError(f"{self.config}: no [spec] table (kind, shape, num_classes of the data)")
        try:
            spec = DataSpec.from_dict(extra["spec"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{self.config}: invalid [spec] table: {e}") from None
        return config, spec
