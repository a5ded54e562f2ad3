"""Measured metrics on a zoo card: read from the JSON of `genmodels evaluate --json` or `genmodels
compare --json` (`read_metrics_file`), added to a card (`record_metrics`), summarised in one line."""

from __future__ import annotations

import json
from pathlib import Path

from genmodels.config_fields import check_type
from genmodels.errors import ConfigError
from genmodels.zoo.card import CARD, MetricRecord, entry_dir, read_card, write_card


def read_metrics_file(path: str | Path, entry: str | None = None) -> dict:
    """Metrics for a card from a JSON file: the output of `genmodels evaluate --json` (its
    "metrics" table of {value, std, real_floor, ...}, with the sample count, data set and
    feature extractor added to each), the output of `genmodels compare --json` (the row of
    zoo:`entry`, with its real-data floor), or a plain {name: number} table. ConfigError naming the
    file, and the field for a value of the wrong type or a non-finite number (NaN and Infinity are
    never recorded)."""
    path = Path(path)
    metrics = _read_metrics(path, entry)
    for name, record in metrics.items():
        check_type(record, MetricRecord, f"{path}: {name}")
    return metrics


def _read_metrics(path: Path, entry: str | None) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such metrics file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable JSON metrics file ({e})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object of metrics")
    if isinstance(doc.get("rows"), list) and "model_metrics" in doc:
        return _compare_row_metrics(path, doc, entry)
    if isinstance(doc.get("metrics"), dict):
        context = {k: doc[k] for k in ("n_samples", "dataset", "extractor") if doc.get(k) is not None}
        out = {}
        for name, record in doc["metrics"].items():
            if isinstance(record, dict):
                out[name] = {**{k: v for k, v in record.items() if v is not None}, **context}
            elif isinstance(record, (int, float)) and not isinstance(record, bool):
                out[name] = {"value": record, **context}
        return out
    bad = [k for k, v in doc.items() if not (isinstance(v, (int, float, dict)) and not isinstance(v, bool))]
    if bad:
        raise ConfigError(f"{path}: metric(s) {bad} are not numbers")
    return {k: (v if isinstance(v, dict) else {"value": v}) for k, v in doc.items()}


def _compare_row_metrics(path: Path, doc: dict, entry: str | None) -> dict:
    """The metrics of zoo:`entry`'s row in a `genmodels compare --json` table: the sample metrics
    with n_samples, the data set, the extractor and the real-data floor beside each; the model
    metrics (likelihoods, code accuracy) with the test examples they were measured on."""
    sources = [r.get("source") for r in doc["rows"] if isinstance(r, dict)]
    row = next((r for r in doc["rows"] if isinstance(r, dict) and entry is not None
                and r.get("source") == f"zoo:{entry}"), None)
    if row is None or not isinstance(row.get("metrics"), dict):
        raise ConfigError(f"{path}: a `genmodels compare` table without a row of zoo:{entry} "
                          f"(its rows: {', '.join(map(str, sources)) or 'none'})")
    model = set(doc.get("model_metrics") or [])
    floor = ((doc.get("floor") or {}).get("metrics")) or {}
    out = {}
    for name, record in row["metrics"].items():
        if not isinstance(record, dict) or record.get("value") is None:
            continue
        kept = {k: v for k, v in record.items() if v is not None}
        if name.split(":")[0] in model:
            kept.update(n_samples=doc.get("n_likelihood"), dataset=doc.get("dataset"))
        else:
            kept.update(n_samples=doc.get("n_samples"), dataset=doc.get("dataset"), extractor=doc.get("extractor"))
            real = floor.get(name) or {}
            if real.get("value") is not None:
                kept["real_floor"] = real["value"]
                if real.get("std") is not None:
                    kept["real_floor_std"] = real["std"]
        out[name] = {k: v for k, v in kept.items() if v is not None}
    return out


def record_metrics(name: str, metrics: dict, commands: dict[str, str] | None = None,
                   root: str | Path | None = None) -> dict:
    """Add measured `metrics` (and the `commands` that measured them) to entry `name`'s card, over
    those it has; the weights and their hash are left as they are. Returns the new card (written
    atomically: `write_card`)."""
    path = entry_dir(name, root) / CARD
    card = read_card(path)
    card["metrics"] = {**(card.get("metrics") or {}), **metrics}
    card["commands"] = {**(card.get("commands") or {}), **(commands or {})}
    write_card(path, card)
    return card


def metrics_summary(card: dict, limit: int = 4) -> str:
    """'fd 12.3, kid 0.0101' from a card's metrics ('-' when none were measured)."""
    items = []
    for name, record in (card.get("metrics") or {}).items():
        value = record.get("value") if isinstance(record, dict) else record
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            items.append(f"{name} {value:.4g}")
    if not items:
        return "-"
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
