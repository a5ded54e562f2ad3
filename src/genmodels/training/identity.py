"""A run's identity, fixed when it is created: its seed, its data, its model config and its precision.

Resuming promises the result of an uninterrupted run, bit for bit; that holds only if these stay
what the run's config.toml says. `check_resume` compares them and refuses a change naming both
values, unless the caller overrides (`genmodels train --resume --override-identity`), in which
case the changes are returned for the trainer to record in metrics.jsonl. Everything else
(steps, logging and checkpoint intervals, the device) may change on resume.
"""

from __future__ import annotations

from genmodels.config import RunConfig, dataclass_to_dict
from genmodels.errors import ConfigError
from genmodels.run.layout import RunDir

OVERRIDE_FLAG = "--override-identity"


def identity_changes(stored: RunConfig, new: RunConfig) -> list[str]:
    """Each identity value that differs, as "key: stored value in the run vs new value now"."""
    changes = []
    if stored.seed != new.seed:
        changes.append(f"seed: {stored.seed} in the run vs {new.seed} now")
    if stored.model_name != new.model_name:
        changes.append(f"model: {stored.model_name!r} in the run vs {new.model_name!r} now")
    sections = [("data", stored.data, new.data)]
    if stored.model_name == new.model_name:
        sections.append(("model", stored.model, new.model))
    for section, a, b in sections:
        before, after = dataclass_to_dict(a), dataclass_to_dict(b)
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes.append(f"{section}.{key}: {before.get(key)!r} in the run vs {after.get(key)!r} now")
    if stored.trainer.precision != new.trainer.precision:
        changes.append(f"trainer.precision: {stored.trainer.precision!r} in the run vs {new.trainer.precision!r} now")
    return changes


def check_resume(run: RunDir, config: RunConfig, override: bool = False,
                 stored: RunConfig | None = None) -> list[str]:
    """The identity changes `config` makes to the run in `run` (none when the run has no config.toml
    yet); ConfigError listing them unless `override`. When the run has a checkpoint, a model config
    change is left to the checkpoint's own check, which compares it with what the weights were
    trained with. `stored`: the run's config.toml as already read (None: read it here)."""
    if not run.config.is_file():
        return []
    if stored is None:
        stored, _ = run.read_config()
    changes = identity_changes(stored, config)
    refused = [c for c in changes if not (c.startswith("model.") and run.latest.is_file())]
    if refused and not override:
        raise ConfigError(f"{run.path}: resuming would change what the run was created with ({'; '.join(refused)}); "
                          f"a run keeps its seed, data, model config and precision so that resuming reproduces "
                          f"an uninterrupted run (pass {OVERRIDE_FLAG} to change them anyway; the change is "
                          f"recorded in metrics.jsonl)")
    return changes if override else []
