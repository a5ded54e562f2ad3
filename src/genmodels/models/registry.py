"""Named model families. Each entry imports its family lazily, so that `genmodels datasets`
does not pay for importing every network.

A family is three classes (`genmodels.models.base` has the contract): the model (a
`GenerativeModel`), its config dataclass and its sample-options dataclass. Besides the built-ins
below, a family comes from
- `genmodels.register_model(name, model_cls, config_cls)` in the running process, or
- an installed package's entry point in the group `genmodels.models`: its name is the family's,
  its object a function returning (ModelClass, ConfigClass, SampleOptionsClass), loaded only
  when the family is used, so that `genmodels train NAME` and `genmodels sample RUN_DIR` find it
  in a fresh process (docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import NamedTuple

from genmodels.errors import ConfigError, choice_error
from genmodels.models.base import GenerativeModel

ENTRY_POINT_GROUP = "genmodels.models"
NAME = re.compile(r"[a-z][a-z0-9_-]*")   # family names: what `genmodels train NAME` takes


class Family(NamedTuple):
    """The three classes of a family (`genmodels.models.base` has the contract)."""

    model_cls: type        # the GenerativeModel subclass
    config_cls: type       # its config dataclass (the [model] table)
    options_cls: type      # its sample-options dataclass (model_cls.sample_options)


@dataclass(frozen=True)
class ModelEntry:
    """A registered family: `load()` returns (ModelClass, ConfigClass, SampleOptionsClass)."""

    name: str
    description: str
    load: Callable[[], tuple[type, type, type]]


def _ddpm():
    from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions  # lazy: a family loads on first use

    return DDPM, DDPMConfig, DDPMSampleOptions


def _flow():
    from genmodels.models.flow import Flow, FlowConfig, FlowSampleOptions  # lazy: a family loads on first use

    return Flow, FlowConfig, FlowSampleOptions


def _gan():
    from genmodels.models.gan import GAN, GANConfig, GANSampleOptions  # lazy: a family loads on first use

    return GAN, GANConfig, GANSampleOptions


def _infogan():
    from genmodels.models.infogan import InfoGAN, InfoGANConfig, InfoGANSampleOptions  # lazy: loaded on first use

    return InfoGAN, InfoGANConfig, InfoGANSampleOptions


def _vae():
    from genmodels.models.vae import VAE, VAEConfig, VAESampleOptions  # lazy: a family loads on first use

    return VAE, VAEConfig, VAESampleOptions


MODELS: dict[str, ModelEntry] = {
    "ddpm": ModelEntry("ddpm", "denoising diffusion probabilistic model (Ho et al. 2020; seed section 4)", _ddpm),
    "flow": ModelEntry("flow", "flow matching / rectified flow on the linear path, exact likelihood, reflow "
                       "(Lipman et al. 2023; Liu et al. 2023)", _flow),
    "gan": ModelEntry("gan", "generative adversarial network, Algorithm 2.1 (Goodfellow et al. 2014; seed section 2)",
                      _gan),
    "infogan": ModelEntry("infogan", "InfoGAN with categorical/continuous codes (Chen et al. 2016; seed section 3)",
                          _infogan),
    "vae": ModelEntry("vae", "variational auto-encoder (Kingma & Welling 2013; seed section 1)", _vae),
}


def check_family(name: str, model_cls: type, config_cls: type, options_cls: type | None = None) -> type:
    """ConfigError unless the classes keep the contract of `genmodels.models.base`: a
    GenerativeModel subclass whose `sample_options` is options_cls (None: whatever it is), and two
    dataclasses, the config with a validate() method and no field called `name` (the [model]
    table's family name). Returns the sample-options class."""

    where = f"model family {name!r}"
    if not (isinstance(model_cls, type) and issubclass(model_cls, GenerativeModel)):
        raise ConfigError(f"{where}: {model_cls!r} is not a subclass of genmodels.models.base.GenerativeModel")
    options_cls = model_cls.sample_options if options_cls is None else options_cls
    for what, cls in (("config", config_cls), ("sample options", options_cls)):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigError(f"{where}: its {what} class {cls!r} is not a dataclass")
    if not callable(getattr(config_cls, "validate", None)):
        raise ConfigError(f"{where}: {config_cls.__name__} needs a validate() method (raising ConfigError)")
    if "name" in {f.name for f in dataclasses.fields(config_cls)}:
        raise ConfigError(f"{where}: {config_cls.__name__} has a field called 'name', which the [model] table "
                          f"uses for the family; rename it")
    if model_cls.sample_options is not options_cls:
        raise ConfigError(f"{where}: {model_cls.__name__}.sample_options is {model_cls.sample_options.__name__}, "
                          f"not {options_cls.__name__}; set sample_options = {options_cls.__name__} on the class")
    return options_cls


def register_model(name: str, model_cls: type, config_cls: type, options_cls: type | None = None,
                   description: str = "") -> ModelEntry:
    """Add a family to this process's registry: `genmodels train NAME`, `sample`, `evaluate`,
    `genmodels.train(NAME, ...)` and `genmodels.load(RUN_DIR)` then know it. options_cls defaults
    to model_cls.sample_options; description to the first line of the model's docstring.
    Registering the same classes again is a no-op; another family under a taken name is a
    ConfigError. Returns the entry."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"model family name {name!r}: use lower-case letters, digits, '-' and '_', starting "
                          f"with a letter")
    options_cls = check_family(name, model_cls, config_cls, options_cls)
    classes = (model_cls, config_cls, options_cls)
    if name in MODELS:
        if MODELS[name].load() == classes:
            return MODELS[name]
        raise ConfigError(f"model family {name!r} is already registered (with other classes); choose another name")
    doc = (model_cls.__doc__ or "").strip().splitlines()
    entry = ModelEntry(name, description or (doc[0] if doc else model_cls.__name__), lambda: classes)
    MODELS[name] = entry
    return entry


def _plugin(ep) -> ModelEntry:
    """The entry of an installed package's `genmodels.models` entry point (loaded on first use)."""

    def load() -> tuple[type, type, type]:
        try:
            classes = tuple(ep.load()())
        except (ImportError, AttributeError, TypeError) as e:
            raise ConfigError(f"model family {ep.name!r} from entry point {ep.value!r} cannot be loaded: {e}") from None
        if len(classes) != 3:
            raise ConfigError(f"model family {ep.name!r}: entry point {ep.value!r} must return (ModelClass, "
                              f"ConfigClass, SampleOptionsClass)")
        check_family(ep.name, *classes)
        return classes

    return ModelEntry(ep.name, f"installed plugin ({ep.value})", load)


def families() -> dict[str, ModelEntry]:
    """Every family by name: the built-ins, those registered in this process and those installed
    packages declare as `genmodels.models` entry points (a registered name wins over a plugin's)."""
    plugins = {ep.name: _plugin(ep) for ep in entry_points(group=ENTRY_POINT_GROUP)
               if ep.name not in MODELS and NAME.fullmatch(ep.name)}
    return {**plugins, **MODELS}


def get_model(name: str) -> Family:
    """The classes of a registered family (model_cls, config_cls, options_cls); ConfigError if unknown."""
    entry = MODELS.get(name) or families().get(name)
    if entry is None:
        raise choice_error("model", name, families())
    return Family(*entry.load())
