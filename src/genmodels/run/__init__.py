"""Run directories, below both the trainer and the report: their layout (`layout.py`, every file
name once), the checkpoint format (`checkpoint.py`), the run's random streams (`seeds.py`), the
memory check before a model is built (`model_size.py`), rebuilding a trained model
(`load.py`: `load_run`, `build_model`, `resolve_device`), the VAE run behind `latents:VAE_RUN` data
(`latents.py`: `read_vae`, and `load_data`, `genmodels.data.load` that reads it) and the run's
metrics.jsonl (`metrics_file.py`).

    from genmodels.run import load_run
    loaded = load_run("runs/ddpm-mnist")          # LoadedRun: model (eval mode), config, spec, step
"""

from genmodels.run.latents import load_data, load_data_config, read_vae
from genmodels.run.layout import RunDir
from genmodels.run.load import LoadedRun, build_model, load_run, resolve_device

__all__ = ["LoadedRun", "RunDir", "build_model", "load_data", "load_data_config", "load_run", "read_vae",
           "resolve_device"]
