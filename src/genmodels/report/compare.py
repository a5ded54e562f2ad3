"""The table of `genmodels compare`: trained models of any family, one data set, the same metrics.

`CompareConfig` holds the settings (one set for every row); `CompareRow` is one model (or the
real-data floor) and `CompareTable` the whole comparison, rendered as plain text
(`format_text`), a GitHub Markdown table with its caption (`format_markdown`), a standalone
HTML page (`format_html`, self-contained like the run report: inline style, no scripts, every
string escaped) and JSON (`to_dict`). The numbers come from `genmodels.metrics.evaluate` (see
`genmodels.evaluation.compare`, which fills the table); this module only lays them out.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from dataclasses import dataclass, field
from html import escape
from string import Template
from typing import Any

from genmodels.config_fields import param, require
from genmodels.errors import choice_error
from genmodels.metrics.evaluate import ALIASES, FEATURE_METRICS, SAMPLE_METRICS, EvalConfig, MetricSettings

HIDDEN = ("parzen_sigma",)  # in the JSON, not a column: the Parzen window's width chosen per row
LABELS = {"parzen_ll": "Parzen LL", "modes_captured": "modes", "high_quality": "high quality"}
LIKELIHOOD = "nll"          # the family's likelihood, wherever the family defines one
# the evaluation options of a family's likelihood in a row: DDPM's is the Theorem 8 bound alone
LIKELIHOOD_OPTIONS: dict[str, dict[str, Any]] = {"ddpm": {"nll_estimates": "bound"}}


@dataclass
class CompareConfig(MetricSettings):
    """The settings of `genmodels compare`: those it shares with `genmodels evaluate` (MetricSettings,
    one set for every row) and the likelihoods' test examples."""

    metrics: str = param("", "comma-separated metrics ('' = fd,prdc,parzen,nll for images; fd,prdc,modes,nll for "
                         "points); nll is each family's likelihood (VAE: IWAE bound in nats; DDPM: Theorem 8 bound "
                         "in bits/dim; GAN, InfoGAN: none); also kid, is and the families' own metrics (elbo, "
                         "code-accuracy)")
    nll_n: int = param(1000, "test examples of the likelihoods (and of the families' own metrics)")

    def validate(self) -> None:
        super().validate()
        require(self.nll_n >= 2, f"nll_n must be >= 2, got {self.nll_n}")

    def eval_config(self, metrics: list[str], *, likelihood: bool = False) -> EvalConfig:
        """The EvalConfig of `genmodels evaluate` that gives one part of a row: the sample metrics at n
        (no floor: the floor is its own row), or the model metrics at nll_n (`likelihood`; with the
        family's LIKELIHOOD_OPTIONS)."""
        settings = {**self.shared(), "metrics": ",".join(metrics), "floor": False}
        if likelihood:
            settings.update(n=self.nll_n)
        return EvalConfig(**settings)


def resolve_metrics(cfg: CompareConfig, kind: str, model_metrics: set[str]) -> tuple[list[str], list[str]]:
    """(metrics every row gets from its samples, model metrics) of cfg.metrics; ConfigError listing
    the valid names for an unknown one. `model_metrics`: the names the sources' families define."""

    if cfg.metrics.strip():
        names = [ALIASES.get(m.strip(), m.strip()) for m in cfg.metrics.split(",") if m.strip()]
    else:
        names = ["fd", "prdc", "parzen", LIKELIHOOD] if kind == "image" else ["fd", "prdc", "modes", LIKELIHOOD]
    valid = [*FEATURE_METRICS, *SAMPLE_METRICS, LIKELIHOOD, *sorted(model_metrics - {LIKELIHOOD})]
    names = list(dict.fromkeys(names))
    for m in names:
        if m not in valid:
            raise choice_error("metric", m, valid + list(ALIASES))
    return ([m for m in names if m in FEATURE_METRICS or m in SAMPLE_METRICS],
            [m for m in names if m not in FEATURE_METRICS and m not in SAMPLE_METRICS])


def likelihood_of(metrics: dict[str, dict], k: int) -> dict[str, Any] | None:
    """The family likelihood among a row's model-metric results, or None: the VAE's 'nll' (IWAE
    bound, nats per example), the DDPM's 'nll:bpd_total' (Theorem 8 bound, bits/dim; nats/dim on points),
    else an ODE likelihood, 'nll:bpd_ode' (the flow family's; nats/dim on points)."""
    if "nll" in metrics:
        return {"value": metrics["nll"]["value"], "unit": "nats",
                "estimator": f"-(IWAE bound L_k), k = {k} importance samples"}
    for key, unit in (("nll:bpd_total", "bits/dim"), ("nll:nats_per_dim_total", "nats/dim")):
        if key in metrics:
            return {"value": metrics[key]["value"], "unit": unit, "estimator": "the Theorem 8 bound (seed eq. 4.10)"}
    for key, unit in (("nll:bpd_ode", "bits/dim"), ("nll:nats_per_dim_ode", "nats/dim")):   # the flow family's
        if key in metrics:
            return {"value": metrics[key]["value"], "unit": unit,
                    "estimator": "the ODE's change of variables (Chen et al. 2018), images dequantised"}
    return None


@dataclass
class CompareRow:
    """One line: a model (source, family, size, training cost) or the real-data floor (`floor`)."""

    name: str
    source: str = ""
    family: str = "-"
    params: int | None = None
    train_cpu_minutes: float | None = None
    step: int | None = None
    ema: bool = False
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)   # key -> {"value", "std"}
    likelihood: dict[str, Any] | None = None
    sample_options: dict[str, Any] = field(default_factory=dict)
    floor: bool = False


@dataclass
class CompareTable:
    dataset: str
    data_options: dict[str, Any]
    extractor: str
    settings: CompareConfig
    command: str
    n_samples: int = 0
    n_reference: int = 0
    n_floor: int = 0
    n_likelihood: int = 0
    sample_metrics: list[str] = field(default_factory=list)
    model_metrics: list[str] = field(default_factory=list)
    rows: list[CompareRow] = field(default_factory=list)
    floor: CompareRow | None = None
    notes: list[str] = field(default_factory=list)

    # ---- columns -----------------------------------------------------------------------------
    def metric_keys(self) -> list[str]:
        """The sample-metric columns, in the order the evaluation reports them."""
        keys: list[str] = []
        for row in ([self.floor] if self.floor else []) + self.rows:
            for key in row.metrics:
                if ":" not in key and key not in self.model_metrics and key not in HIDDEN and key not in keys:
                    keys.append(key)
        return keys

    def extra_model_keys(self) -> list[str]:
        """Columns for the families' own metrics other than the likelihood (elbo, code-accuracy)."""
        return [m for m in self.model_metrics if m != LIKELIHOOD]

    def head(self) -> list[str]:
        head = ["model", "family", "params", "train CPU-min", "step"]
        head += [LABELS.get(k, k) for k in self.metric_keys()]
        if LIKELIHOOD in self.model_metrics:
            head.append("NLL")
        return head + self.extra_model_keys()

    def cells(self, row: CompareRow) -> list[str]:
        step = "-" if row.step is None else f"{row.step}" + (" (EMA)" if row.ema else "")
        out = [row.name, row.family, _params(row.params), _num(row.train_cpu_minutes, digits=3), step]
        out += [_pm(row.metrics.get(k)) for k in self.metric_keys()]
        if LIKELIHOOD in self.model_metrics:
            lik = row.likelihood
            out.append("-" if lik is None else f"{_num(lik['value'])} {lik['unit']}")
        return out + [_pm(row.metrics.get(k)) for k in self.extra_model_keys()]

    def body(self) -> list[list[str]]:
        return [self.cells(r) for r in ([self.floor] if self.floor else []) + self.rows]

    # ---- words -------------------------------------------------------------------------------
    def data_label(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.data_options.items())
        return self.dataset + (f" ({opts})" if opts else "")

    def caption(self) -> list[str]:
        """The sentences that say how every number was measured."""
        s = self.settings
        lines = [f"{len(self.rows)} model(s) on {self.data_label()}"
                 + (f": {self.n_samples} samples per model (seed {s.seed}) against {self.n_reference} test examples; "
                    f"features: {self.extractor}." if self.sample_metrics else ".")]
        if self.floor is not None:
            lines.append(f"real-data floor: the same metrics between those test examples and {self.n_floor} training "
                         f"examples, the value of a perfect model at these sizes.")
        keys = set(self.metric_keys())
        if any(k.startswith(("FD", "FID")) for k in keys):
            lines.append("FD: Frechet distance of the feature Gaussians (lower is better).")
        if "precision" in keys:
            lines.append(f"precision/recall: k = {s.k_pr} (Kynkaanniemi et al. 2019); density/coverage: k = {s.k_dc} "
                         f"(Naeem et al. 2020).")
        if "parzen_ll" in keys:
            lines.append("Parzen LL: log-likelihood of the test examples under a Gaussian Parzen window on the samples "
                         "(Goodfellow et al. 2014's protocol; sigma chosen on up to 1,000 other training images), "
                         "nats per image, mean ± standard error.")
        if self.model_metrics:
            kinds = dict.fromkeys(f"{r.family}: {r.likelihood['estimator']} ({r.likelihood['unit']})"
                                  for r in self.rows if r.likelihood is not None)
            what = "likelihoods" + (" and the families' own metrics" if self.extra_model_keys() else "")
            lines.append(f"{what}: on {self.n_likelihood} test examples (seed {s.seed})"
                         + (f"; NLL: {'; '.join(kinds)}" if LIKELIHOOD in self.model_metrics and kinds else "")
                         + ("; - where the family defines none (GAN, InfoGAN)" if LIKELIHOOD in self.model_metrics
                            else "") + ".")
        lines.append("params: parameters of all the model's networks, as trained (also those a zoo entry of the "
                     "sampling networks does not store, e.g. a GAN's discriminator); train CPU-min: CPU-minutes of "
                     "training, as logged (- when not recorded); step: the training step of the weights "
                     "(EMA: the EMA weights).")
        options = [f"{r.name}: " + ", ".join(f"{k}={v}" for k, v in r.sample_options.items())
                   for r in self.rows if r.sample_options]
        if options:
            lines.append("sample options: " + "; ".join(options) + ".")
        return lines

    # ---- renderings --------------------------------------------------------------------------
    def format_text(self) -> str:
        head, body = self.head(), self.body()
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        out = [f"genmodels compare: {self.data_label()}"]
        out += ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), "  ".join("-" * w for w in widths)]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
        out += self.caption()
        out += [f"note: {n}" for n in self.notes]
        out.append(f"command: {self.command}")
        return "\n".join(out)

    def format_markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        head, body = self.head(), self.body()
        out = [f"**genmodels compare: {cell(self.data_label())}**", ""]
        out.append("| " + " | ".join(cell(h) for h in head) + " |")
        out.append("|" + "|".join("---" if i == 0 else "---:" if i >= 2 else "---" for i in range(len(head))) + "|")
        out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in body]
        out += [""] + [f"- {line}" for line in self.caption()] + [f"- note: {n}" for n in self.notes]
        out += ["", "Produced by:", "", "```", self.command, "```", ""]
        return "\n".join(out)

    def format_html(self) -> str:
        head, body = self.head(), self.body()
        rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
        for i, r in enumerate(body):
            cls = ' class="floor"' if self.floor is not None and i == 0 else ""
            rows.append(f"<tr{cls}>" + "".join(f'<td{NUM if j >= 2 else ""}>{escape(c)}</td>' for j, c in enumerate(r))
                        + "</tr>")
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return PAGE.substitute(
            title=escape(f"genmodels compare: {self.data_label()}"),
            subtitle=escape(f"written {stamp}"),
            table="<table>" + "".join(rows) + "</table>",
            caption="".join(f"<p>{escape(line)}</p>" for line in self.caption()),
            notes="".join(f'<p class="note">{escape(n)}</p>' for n in self.notes),
            command=escape(self.command),
        )

    def to_dict(self) -> dict[str, Any]:
        def row(r: CompareRow) -> dict[str, Any]:
            d = dataclasses.asdict(r)
            d["metrics"] = {k: {"value": _clean(v.get("value")), "std": _clean(v.get("std"))}
                            for k, v in r.metrics.items()}
            return d

        return {
            "dataset": self.dataset, "data_options": dict(self.data_options), "extractor": self.extractor,
            "n_samples": self.n_samples, "n_reference": self.n_reference, "n_floor": self.n_floor,
            "n_likelihood": self.n_likelihood, "settings": dataclasses.asdict(self.settings),
            "sample_metrics": list(self.sample_metrics), "model_metrics": list(self.model_metrics),
            "columns": self.head(), "floor": row(self.floor) if self.floor else None,
            "rows": [row(r) for r in self.rows], "caption": self.caption(), "notes": list(self.notes),
            "command": self.command,
        }


NUM = ' class="num"'
PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.floor td { background: #f7f9fc; font-style: italic; }
p { max-width: 900px; }
pre { background: #f4f4f4; padding: 0.5em 0.8em; overflow-x: auto; }
.note { background: #fff8e1; border-left: 4px solid #f0c040; padding: 0.4em 0.8em; margin: 0.5em 0; }
.muted { color: #777; font-size: 0.85em; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="muted">$subtitle</p>
$table
$caption
$notes
<p>Produced by:</p>
<pre>$command</pre>
</body>
</html>
""")


def _clean(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 100:   # 195.96 as 196.0, not 196; 12345.6 in full, not 1.235e+04
        return f"{v:.1f}"
    return f"{v:.{digits}g}"


def _pm(m: dict | None) -> str:
    if not m or _clean(m.get("value")) is None:
        return "-"
    return _num(m["value"]) + (f" ± {m['std']:.2g}" if m.get("std") is not None else "")


def _params(n: int | None) -> str:
    if n is None:
        return "-"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)
