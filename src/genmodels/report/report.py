"""`write_report(run_dir)`: the one call that (re)builds RUN_DIR/report.html."""

from __future__ import annotations

import tomllib
from pathlib import Path

from genmodels.atomic import check_output_path, write_text
from genmodels.errors import ConfigError
from genmodels.report.html import build_page
from genmodels.report.views import render_views
from genmodels.run.layout import RunDir
from genmodels.run.metrics_file import read_metrics


def read_config_table(run_dir: Path) -> dict:
    """RUN_DIR/config.toml as plain tables; ConfigError if this is not a run directory."""
    path = RunDir(run_dir).config
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {path.name})")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def write_report(run_dir: str | Path, *, views: bool = True, device: str = "cpu", seed: int = 0,
                 out: str | Path | None = None) -> Path:
    """Write RUN_DIR/report.html (or `out`) and return its path.

    views: also draw the family's views (VAE reconstructions, InfoGAN traversals, DDPM denoising
    strip, GAN decision surface) from the latest checkpoint into RUN_DIR/views/, on `device`,
    with a generator seeded by `seed`. The page is written atomically (a reader never sees half).
    """

    run_dir = Path(run_dir)
    config = read_config_table(run_dir)
    path = check_output_path(out if out is not None else RunDir(run_dir).report)  # before the views are drawn
    records = read_metrics(RunDir(run_dir).metrics)
    if views:
        result = render_views(run_dir, device=device, seed=seed)
        view_list, notes, step = result.views, result.notes, result.step
    else:
        view_list, notes, step = [], ["model views not drawn (views=False / --no-views)"], None
    page = build_page(run_dir, config, records, view_list, notes, step)
    return write_text(path, page)
