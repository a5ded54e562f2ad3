"""Typed run configuration: seed + DataConfig + TrainerConfig + the model family's own config.

A run is described by one `RunConfig`, written to `config.toml` as

    seed = 0
    out = "runs/ddpm-mnist"
    init = "zoo:NAME"   (only for a fine-tuned run: the source its networks started from)
    [data]      name, image_size, channels, binarize, limit
    [trainer]   steps, batch_size, ema_decay, grad_clip, ...
    [model]     name = "ddpm" plus every field of the family's config dataclass
    [sample]    the run's sampling defaults: fields of the family's sample options (e.g. sampler,
                steps), used by `genmodels sample`, `evaluate`, `compare` and `zoo export` when the
                user names none (a new run records the family's measured recommendation,
                `GenerativeModel.recommended_sample_options`)

Values come, lowest precedence first, from the dataclass defaults, a TOML file, typed command
line flags and `--set section.key=value` overrides. Each value is parsed to its field's annotated
type (`coerce`) and every unknown key or bad value raises a `ConfigError` naming it.
"""

from __future__ import annotations

import copy
import re
import tomllib
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from genmodels.atomic import write_text
from genmodels.config_fields import (
    check_choices,
    check_numbers,
    coerce,
    dataclass_to_dict,
    param,
    require,
    update_dataclass,
    validate_options,
)
from genmodels.errors import ConfigError
from genmodels.models.registry import get_model

Precision = Literal["auto", "fp32", "bf16", "fp16"]                 # autocast (training/hardware.py)
LRSchedule = Literal["constant", "cosine", "linear"]                # after the warm-up (training/lr_schedule.py)
GradCompression = Literal["none", "bf16"]                           # gradient all-reduce (training/grad_buckets.py)
SECTIONS = ("data", "trainer", "model")
TOP_LEVEL = ("seed", "out", "init")
SAMPLE = "sample"                      # the [sample] table: the run's sampling defaults
MAX_SIGMA_REL = 0.288                  # a power-function EMA's relative width is below 1 / sqrt(12)


@dataclass
class DataConfig:
    """Which data to train on and how to prepare it (passed to `genmodels.data.load`)."""

    name: str = param("", "built-in data set name or path to a file/folder (required unless a recipe, --config, "
                      "--init or --resume names it)", metavar="NAME_OR_PATH")
    image_size: int = param(0, "resize images to this height and width (0 = native size)")
    channels: int = param(0, "convert images to this many channels, 1 or 3 (0 = native)")
    binarize: bool = param(False, "threshold pixels at 0.5 (binary MNIST, as in Kingma & Welling)")
    limit: int = param(0, "use only the first N training examples (0 = all)")

    def validate(self) -> None:
        require(self.name != "", "data.name is empty: pass --data NAME_OR_PATH")
        require(self.image_size >= 0, f"data.image_size must be >= 0, got {self.image_size}")
        require(self.channels in (0, 1, 3), f"data.channels must be 0, 1 or 3, got {self.channels}")
        require(self.limit >= 0, f"data.limit must be >= 0, got {self.limit}")


@dataclass
class TrainerConfig:
    """The model-agnostic training loop (learning rates belong to the model, which owns its optimisers)."""

    steps: int = param(10000, "number of optimisation steps (ignored when epochs > 0; given alone on the command "
                       "line, it also overrides an epochs count from a recipe or --config)")
    epochs: int = param(0, "train for this many passes over the data instead of `steps` (0 = use steps)")
    batch_size: int = param(64, "examples per optimisation step (the global batch, summed over accumulate "
                            "micro-batches and torchrun processes)")
    accumulate: int = param(1, "gradient accumulation: split each batch into this many micro-batches, one "
                            "backward pass each, one optimiser step (same update as the whole batch)")
    lr_schedule: LRSchedule = param("cosine", "learning-rate schedule after the warm-up, applied to every "
                                    "optimiser: constant, cosine (decay to 0 at the last step) or linear (to 0)")
    warmup_steps: int = param(100, "linear learning-rate warm-up from lr / warmup_steps to lr over this many "
                              "steps (0 = none)")
    ema_decay: float = param(0.999, "decay of the exponential moving average of ema_modules() (0 = no EMA)")
    ema_warmup: bool = param(True, "use decay min(ema_decay, (1 + n) / (10 + n)) after n updates: an average "
                             "over about the last n / 9 steps, so short runs are averaged too")
    ema_sigma_rels: list[float] = param([], "power-function EMAs of ema_modules() kept for post-hoc reconstruction "
                                        "(Karras et al. 2024), named by their relative width sigma_rel, e.g. "
                                        "0.05,0.1; stored at every checkpoint in RUN_DIR/ema/ and rebuilt at any "
                                        "other width after training by `genmodels ema` ([] = off)")
    grad_clip: float = param(1.0, "clip the gradient norm of each optimiser step to this value (0 = off)")
    grad_bucket_mb: float = param(1.0, "under torchrun: all-reduce the gradients in buckets of about this many MiB, "
                                  "each started while the backward pass is still running (0 = one all-reduce "
                                  "after the backward pass)")
    grad_compression: GradCompression = param("none", "under torchrun: all-reduce the gradients exactly (none) or "
                                              "as bfloat16 (bf16: half the bytes, relative error about 2^-8)")
    log_every: int = param(50, "append losses to metrics.jsonl every this many steps")
    sample_every: int = param(1000, "write samples/step_XXXXXXX.png every this many steps (0 = never)")
    sample_n: int = param(64, "number of samples in each periodic grid")
    checkpoint_every: int = param(1000, "overwrite checkpoints/latest.pt every this many steps (and at the end)")
    keep_every: int = param(0, "also keep checkpoints/step_XXXXXXX.pt every this many steps (0 = latest only)")
    device: str = param("auto", "torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, mps "
                        "(under torchrun: each rank uses cuda:LOCAL_RANK, or cpu)", metavar="DEVICE")
    precision: Precision = param("auto", "autocast precision: auto (bf16 where the CPU has AVX512-BF16/AMX or the "
                                 "GPU supports bf16, else fp32; the resolved value is recorded), fp32, bf16 (CPU or "
                                 "CUDA), fp16 (CUDA, with grad scaling)")
    threads: int = param(0, "intra-op CPU threads of this process (0 = one per core, shared out among "
                         "torchrun's local processes; pass 1 when the machine is busy)")
    compile: bool = param(False, "torch.compile each network's forward (nn.Module.compile; slow first steps)")
    channels_last: bool = param(False, "channels-last memory format for 4-D conv weights and image batches")
    report: bool = param(True, "write RUN_DIR/report.html at the end of training (genmodels train and "
                         "genmodels.train(); a Trainer of your own calls its on_finish)")
    progress: bool = param(True, "show a tqdm progress bar with the live losses")
    tensorboard: bool = param(True, "also write TensorBoard event files when tensorboard is installed")

    def validate(self) -> None:
        check_choices(self, "trainer")
        for name in ("steps", "batch_size", "accumulate", "log_every", "checkpoint_every", "sample_n"):
            value = getattr(self, name)
            require(value > 0, f"trainer.{name} must be positive, got {value}")
        for name in ("epochs", "sample_every", "keep_every", "warmup_steps", "threads"):
            value = getattr(self, name)
            require(value >= 0, f"trainer.{name} must be >= 0, got {value}")
        require(self.batch_size % self.accumulate == 0,
                f"trainer.batch_size {self.batch_size} is not divisible by trainer.accumulate {self.accumulate}")
        require(0.0 <= self.ema_decay < 1.0, f"trainer.ema_decay must be in [0, 1), got {self.ema_decay}")
        require(len(self.ema_sigma_rels) <= 4 and len(set(self.ema_sigma_rels)) == len(self.ema_sigma_rels)
                and all(0.0 < s < MAX_SIGMA_REL for s in self.ema_sigma_rels),
                f"trainer.ema_sigma_rels must be at most 4 distinct values in (0, {MAX_SIGMA_REL}), got "
                f"{self.ema_sigma_rels}")
        require(self.grad_clip >= 0.0, f"trainer.grad_clip must be >= 0, got {self.grad_clip}")
        require(self.grad_bucket_mb >= 0.0, f"trainer.grad_bucket_mb must be >= 0, got {self.grad_bucket_mb}")
        require(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
                f"trainer.device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")


@dataclass
class RunConfig:
    """Everything needed to rebuild and continue a run."""

    model_name: str                        # registered family, e.g. "ddpm"
    model: Any                             # an instance of that family's config dataclass
    seed: int = param(0, "run seed: every torch.Generator of the run (data order, noise, weights) is derived "
                      "from it")
    out: str = param("", "run directory")
    init: str = param("", "fine-tuning: the source (run directory or zoo:NAME) whose weights the networks start "
                      "from at step 0 (\"\" = the family's own initialisation)")
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    sample: dict[str, Any] = field(default_factory=dict)   # [sample]: {field: value} of the family's sample options

    @classmethod
    def default(cls, model_name: str) -> RunConfig:
        """The defaults for a registered family (ConfigError listing the families if unknown)."""
        return cls(model_name=model_name, model=family_config_class(model_name)())

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid value."""
        require(isinstance(self.seed, int) and self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}")
        for section in SECTIONS:  # finite floats, 64-bit integers, in every field (genmodels.config_fields)
            check_numbers(getattr(self, section), section)
        check_numbers(self, "")
        self.data.validate()
        self.trainer.validate()
        check_choices(self.model, "model")
        self.model.validate()                  # every family's config has one (genmodels.models.base)
        self.sample = checked_sample_table(self.model_name, self.sample, SAMPLE)

    def to_dict(self) -> dict:
        """Plain TOML-ready data (None values are left out: TOML has no null; so is an empty init)."""
        return {
            "seed": self.seed,
            "out": self.out,
            **({"init": self.init} if self.init else {}),
            "data": dataclass_to_dict(self.data),
            "trainer": dataclass_to_dict(self.trainer),
            "model": {"name": self.model_name, **dataclass_to_dict(self.model)},
            **({SAMPLE: dict(self.sample)} if self.sample else {}),
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> RunConfig:
        """Build from nested plain data, e.g. a parsed TOML file; `source` names it in errors."""
        unknown = set(d) - set(TOP_LEVEL) - set(SECTIONS) - {SAMPLE}
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; valid keys: "
                              f"{', '.join(TOP_LEVEL + SECTIONS + (SAMPLE,))}")
        model_table = dict(d.get("model", {}))
        name = model_table.pop("name", None)
        if not name:
            raise ConfigError(f"{source}: the [model] table needs a name (e.g. name = \"ddpm\")")
        config = cls.default(str(name))
        return config.merge(d, source)

    def merge(self, d: dict, source: str = "config") -> RunConfig:
        """A copy with the values of nested plain data `d` applied (the model name must agree)."""
        out = copy.deepcopy(self)
        for key, value in d.items():
            if key in TOP_LEVEL:
                setattr(out, key, coerce(value, typing.get_type_hints(RunConfig)[key], f"{source}: {key}"))
            elif key in SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: {key} must be a table, got {value!r}")
                table = dict(value)
                if key == "model":
                    name = table.pop("name", self.model_name)
                    if name != self.model_name:
                        raise ConfigError(f"{source}: model.name is {name!r} but the run's model is "
                                          f"{self.model_name!r}")
                update_dataclass(getattr(out, key), table, f"{source}: {key}")
            elif key == SAMPLE:
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: {key} must be a table, got {value!r}")
                given = {str(k).replace("-", "_"): v for k, v in value.items()}
                out.sample = checked_sample_table(out.model_name, {**out.sample, **given}, f"{source}: {key}")
            else:
                raise ConfigError(f"{source}: unknown key {key!r}; valid keys: "
                                  f"{', '.join(TOP_LEVEL + SECTIONS + (SAMPLE,))}")
        return out

    def with_overrides(self, assignments: list[str]) -> RunConfig:
        """Apply `section.key=value` strings (the `--set` option), parsed by the field types."""
        nested: dict[str, Any] = {}
        for item in assignments:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--set expects section.key=value, got {item!r}")
            parts = key.strip().split(".")
            if len(parts) == 1 and parts[0] in TOP_LEVEL:
                nested[parts[0]] = value
            elif len(parts) == 2 and (parts[0] in SECTIONS or parts[0] == SAMPLE):
                if parts == ["model", "name"]:
                    raise ConfigError("--set model.name is not allowed: name the model on the command line")
                nested.setdefault(parts[0], {})[parts[1]] = value
            else:
                raise ConfigError(f"--set {item!r}: the key must be one of {', '.join(TOP_LEVEL)} or "
                                  f"section.field with section in {', '.join(SECTIONS + (SAMPLE,))}")
        return self.merge(nested, "--set")

    def save_toml(self, path: str | Path, extra: dict | None = None) -> None:
        """Write as TOML (plus `extra` top-level tables, e.g. the data spec)."""

        doc = {**self.to_dict(), **(extra or {})}
        write_text(path, tomli_w.dumps(doc))


def load_toml(path: str | Path, ignore: tuple[str, ...] = ("spec",)) -> tuple[RunConfig, dict]:
    """Read a TOML run config, checked (`RunConfig.validate`: a bad value is named as this file's); returns
    (config, the ignored top-level tables such as [spec])."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    extra = {k: doc.pop(k) for k in ignore if k in doc}
    model = doc.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        doc["model"], notes = upgrade_saved_model_table(model["name"], model)
        for note in notes:
            warnings.warn(f"{path}: {note}", UserWarning, stacklevel=2)
    config = RunConfig.from_dict(doc, str(path))
    try:        # a value out of its range is the file's, named as such (a resumed run's config.toml too)
        config.validate()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return config, extra


def checked_sample_table(model_name: str, table: dict[str, Any], where: str) -> dict[str, Any]:
    """The [sample] table's values parsed by the family's sample options' field types and checked as
    `genmodels sample` checks them (choices, ranges, its `validate()`), as {field: typed value};
    ConfigError naming `where` and the field. The keys given are kept (the rest stay defaults)."""
    if not table:
        return {}
    options = get_model(model_name).options_cls()
    update_dataclass(options, dict(table), where)
    try:
        validate_options(options, "sample")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return {k: getattr(options, k) for k in table}


def family_config_class(model_name: str) -> type:
    """The config dataclass of a registered family."""

    return get_model(model_name).config_cls


def upgrade_saved_model_table(model_name: str, table: dict) -> tuple[dict, list[str]]:
    """A [model] table written by an older genmodels (a TOML config, a checkpoint's model_config) in
    today's names, with a note per change: the family config's optional static method
    `upgrade_saved(table) -> (table, notes)`. Unknown families pass through unchanged."""
    try:
        cls = family_config_class(model_name)
    except ConfigError:
        return dict(table), []
    upgrade = getattr(cls, "upgrade_saved", None)
    return upgrade(dict(table)) if upgrade is not None else (dict(table), [])
