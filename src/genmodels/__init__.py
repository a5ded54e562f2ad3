"""genmodels: VAE, GAN, InfoGAN and DDPM, faithful to the papers, with their theory checked.

    import genmodels
    model = genmodels.train("ddpm", data="mnist5k", steps=500, out="runs/x")   # trains, returns the model
    x = model.sample(64)                                                        # (64, 1, 28, 28) in [-1, 1]
    model = genmodels.load("runs/x")                                            # or "zoo:NAME"

`genmodels.register_model(name, ModelClass, ConfigClass)` adds a family (docs/extending.md).
"""

from genmodels import data, errors
from genmodels.errors import CheckpointError, ConfigError, DataError, GenmodelsError, TrainingDiverged

__version__ = "0.1.0"


def load(source, device="cpu", *, ema=True, zoo_root=None):
    """The trained model of `source` in eval mode, ready to `sample(n, generator=...)`.

    source: a run directory written by `genmodels train` (its latest checkpoint; its EMA weights
    when it kept them, unless ema=False) or "zoo:NAME", a model shipped with the package
    (`genmodels zoo` lists them; zoo_root reads the entries of another folder). A model trained
    on VAE latents samples images, decoded through its VAE (as `genmodels sample` does).
    Raises ConfigError / CheckpointError naming the problem."""
    from genmodels.latent_run import decode_latents  # imported here: `import genmodels` stays light
    from genmodels.sources import load_source

    return decode_latents(load_source(source, device=device, ema=ema, zoo_root=zoo_root), device).model


def register_model(name, model_cls, config_cls, options_cls=None, description=""):
    """Add a model family: model_cls a `genmodels.models.base.GenerativeModel` subclass, config_cls
    its config dataclass, options_cls its sample-options dataclass (default model_cls.sample_options).
    Then `genmodels train NAME` (in this process), `genmodels.train(NAME, ...)` and
    `genmodels.load(RUN_DIR)` know it; an installed package can declare it as a `genmodels.models`
    entry point instead (docs/extending.md). ConfigError for classes that break the contract."""
    from genmodels.models.registry import register_model as register

    return register(name, model_cls, config_cls, options_cls, description)


def train(*args, **options):
    """Train a model and return it, as `genmodels train` would: `genmodels.train("ddpm", data="mnist5k",
    steps=500, out="runs/x", **options)`; options name any trainer or model field (`genmodels.api.train`
    says how they are routed). The training machinery itself is the subpackage `genmodels.training`."""
    from genmodels.api import train as fit  # imported here: `import genmodels` stays light

    return fit(*args, **options)


__all__ = [
    "data",
    "errors",
    "GenmodelsError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "TrainingDiverged",
    "load",
    "register_model",
    "train",
]
