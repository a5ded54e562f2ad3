"""genmodels: VAE, GAN, InfoGAN and DDPM, faithful to the papers, with their theory checked.

    import genmodels
    model = genmodels.train("ddpm", data="mnist5k", steps=500, out="runs/x")   # trains, returns the model
    x = model.sample(64)                                                        # (64, 1, 28, 28) in [-1, 1]
    model = genmodels.load("runs/x")                                            # or "zoo:NAME"
    print(genmodels.evaluate("runs/x", metrics="fd", n=1000).format_table())    # as `genmodels evaluate`

`genmodels.register_model(name, ModelClass, ConfigClass)` adds a family (docs/extending.md).
"""

from genmodels import data, errors
from genmodels.errors import CheckpointError, ConfigError, DataError, GenmodelsError, TrainingDiverged
from genmodels.models.registry import register_model as _add_family
from genmodels.version import __version__ as __version__  # the package version (genmodels/version.py)


def load(source, device="cpu", *, ema=True, zoo_root=None):
    """The trained model of `source` (a run directory or "zoo:NAME") in eval mode; `genmodels.api.load`."""
    from genmodels.api import load as load_model  # lazy: the API pulls in training and scipy

    return load_model(source, device, ema=ema, zoo_root=zoo_root)


def evaluate(source, **options):
    """The report `genmodels evaluate SOURCE` prints, as an object: `genmodels.evaluate("runs/x",
    metrics="fd,prdc", n=1000).format_table()`; `genmodels.api.evaluate` lists the options."""
    from genmodels.api import evaluate as measure  # lazy: the API pulls in training and scipy

    return measure(source, **options)


def compare(sources, **options):
    """The table `genmodels compare SOURCE ...` prints, as an object: `genmodels.compare(["runs/a",
    "zoo:vae-mnist"], metrics="fd", n=1000).format_markdown()`; `genmodels.api.compare` lists the options."""
    from genmodels.api import compare as tabulate  # lazy: the API pulls in training and scipy

    return tabulate(sources, **options)


def register_model(name, model_cls, config_cls, options_cls=None, description=""):
    """Add a model family: model_cls a `genmodels.models.base.GenerativeModel` subclass, config_cls
    its config dataclass, options_cls its sample-options dataclass (default model_cls.sample_options).
    Then `genmodels train NAME` (in this process), `genmodels.train(NAME, ...)` and
    `genmodels.load(RUN_DIR)` know it; an installed package can declare it as a `genmodels.models`
    entry point instead (docs/extending.md). ConfigError for classes that break the contract."""
    return _add_family(name, model_cls, config_cls, options_cls, description)


def train(*args, **options):
    """Train a model and return it, as `genmodels train` would: `genmodels.train("ddpm", data="mnist5k",
    steps=500, out="runs/x", **options)`; options name any trainer or model field (`genmodels.api.train`
    says how they are routed). The training machinery itself is the subpackage `genmodels.training`."""
    from genmodels.api import train as fit  # lazy: the API pulls in training and scipy

    return fit(*args, **options)


__all__ = [
    "data",
    "errors",
    "GenmodelsError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "TrainingDiverged",
    "compare",
    "evaluate",
    "load",
    "register_model",
    "train",
]
