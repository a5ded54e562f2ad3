"""One conformance test of the model contract (`genmodels.models.base.GenerativeModel`), run over
every family (tiny configs) and the tests' toy model: what the trainer, the CLI, the report and
the metrics call on a model, called here through nothing but the contract and `FakeContext`.
`check_contract` is also run on a family written in a test (tests/test_extending.py)."""

from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch
from conftest import FakeContext
from toy_models import Toy, ToyConfig, ToySampleOptions

from genmodels.data.dataset import Dataset
from genmodels.errors import CheckpointError, ConfigError
from genmodels.models.base import TASKS, GenerativeModel
from genmodels.models.registry import check_family, get_model
from genmodels.run.checkpoint import load_modules, load_optimizers

pytestmark = pytest.mark.usefixtures("one_thread")


def image_data(n: int = 32, classes: int = 3) -> Dataset:
    """n 1x8x8 images on the 8-bit grid in [-1, 1], with labels."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 8, 8, generator=g) * 255).round() / 127.5 - 1
    return Dataset(x=x, y=torch.arange(n) % classes, name="tiny-images", kind="image", num_classes=classes)


def point_data(n: int = 64) -> Dataset:
    g = torch.Generator().manual_seed(1)
    return Dataset(x=torch.randn(n, 2, generator=g), name="tiny-points", kind="points")


def build(model_cls: type, config, spec, seed: int = 0) -> GenerativeModel:
    with torch.random.fork_rng():           # weight initialisers draw from the global RNG
        torch.manual_seed(seed)
        return model_cls(config, spec, "cpu")


def weights(model: GenerativeModel) -> dict[str, torch.Tensor]:
    """A copy of every network's floating-point tensors, by "network.tensor" name."""
    return {f"{name}.{key}": t.detach().clone() for name, m in model.modules().items()
            for key, t in m.state_dict().items() if t.is_floating_point()}


def same_samples(model: GenerativeModel, n: int = 4, seed: int = 3, **options) -> tuple[torch.Tensor, torch.Tensor]:
    return (model.sample(n, generator=torch.Generator().manual_seed(seed), **options),
            model.sample(n, generator=torch.Generator().manual_seed(seed), **options))


def check_contract(model_cls: type, config_cls: type, options_cls: type, config, data: Dataset) -> GenerativeModel:
    """Every promise of the contract, for one family on one data set; returns the trained model."""
    check_family("under-test", model_cls, config_cls, options_cls)     # what register_model checks
    assert dataclasses.is_dataclass(config) and isinstance(config, config_cls)
    config.validate()

    # builds: a GenerativeModel on the CPU, its state in named networks and optimisers
    model = build(model_cls, config, data.spec)
    assert isinstance(model, GenerativeModel)
    assert model.device == torch.device("cpu")
    assert isinstance(model.config, config_cls)
    modules, optimizers, ema = model.modules(), model.optimizers(), model.ema_modules()
    assert modules and all(isinstance(m, torch.nn.Module) for m in modules.values())
    assert all(isinstance(o, torch.optim.Optimizer) for o in optimizers.values())
    assert set(ema) <= set(modules) and all(ema[k] is modules[k] for k in ema)

    # trains a step through the StepContext alone, logging finite scalars and changing some weight
    before = weights(model)
    ctx = FakeContext(data.x, data.y, batch_size=16, seed=1)
    for step in range(2):
        ctx.step = step
        out = model.train_step(ctx.next_batch(), ctx)
        assert out and all(isinstance(k, str) and math.isfinite(float(v)) for k, v in out.items()), out
    after = weights(model)
    assert ctx.optimized and any(not torch.equal(before[k], after[k]) for k in before)

    # samples in data space, all randomness from the generator: the same seed gives the same samples
    a, b = same_samples(model)
    assert a.shape == (4, *data.spec.shape) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    if data.kind == "image":
        assert a.min() >= -1 and a.max() <= 1

    # the options dataclass: its defaults and the trainer's preview settings are valid sample options
    assert model.sample_options is options_cls and dataclasses.is_dataclass(options_cls)
    defaults = options_cls()
    assert model.sample(2, defaults, generator=torch.Generator().manual_seed(0)).shape == (2, *data.spec.shape)
    preview = model.preview_options()
    assert isinstance(preview, options_cls)
    assert model.sample(2, preview, generator=torch.Generator().manual_seed(0)).shape == (2, *data.spec.shape)
    nrow = model.sample_nrow(defaults)
    assert nrow is None or (isinstance(nrow, int) and nrow > 0)

    # state round-trips as the trainer's checkpoints hold it: tensors and plain data only, into a
    # model initialised differently
    state = {"modules": {k: m.state_dict() for k, m in model.modules().items()},
             "optimizers": {k: o.state_dict() for k, o in model.optimizers().items()}}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = build(model_cls, config_cls(**dataclasses.asdict(config)), data.spec, seed=123)
    saved = torch.load(buffer, weights_only=True)
    load_modules(restored.modules(), saved["modules"], "modules")
    load_optimizers(restored.optimizers(), saved["optimizers"], "optimizers")
    assert torch.equal(restored.sample(4, generator=torch.Generator().manual_seed(3)), a)
    with pytest.raises(CheckpointError, match="modules"):
        load_modules(restored.modules(), {}, "modules")

    # the sampling networks suffice to sample: copied alone into a model initialised differently,
    # the others left as they are, they give the same samples (what a `--networks sampling` zoo entry relies on)
    sampling = model.sampling_modules()
    assert sampling and len(set(sampling)) == len(sampling) and set(sampling) <= set(modules)
    partial = build(model_cls, config_cls(**dataclasses.asdict(config)), data.spec, seed=321)
    for name in sampling:
        partial.modules()[name].load_state_dict(modules[name].state_dict())
    assert torch.equal(partial.sample(4, generator=torch.Generator().manual_seed(3)), a)

    # views are pictures: (1, C, H, W) or rows of frames, in [-1, 1]
    views = model.views(torch.Generator().manual_seed(0), data=data)
    assert isinstance(views, dict)
    for name, image in views.items():
        assert isinstance(image, torch.Tensor) and image.dim() == 4, name
        assert image.min() >= -1 and image.max() <= 1, name

    # model-specific metrics: an unknown name is refused, naming the ones there are
    assert isinstance(model.metric_names, tuple)
    with pytest.raises(ConfigError, match="no-such-metric") as refused:
        model.evaluate("no-such-metric", data)
    assert all(name in str(refused.value) for name in model.metric_names)

    # optional tasks are declared, never probed
    assert set(model.capabilities) <= set(TASKS)
    assert all(model.supports(task) == (task in model.capabilities) for task in TASKS)
    with pytest.raises(ConfigError, match="valid choices"):
        model.supports("teleport")
    return model


TINY = {
    "vae": {"hidden": [16], "latent_dim": 2},
    "gan": {"mlp_width": 16, "mlp_depth": 1, "z_dim": 4},
    "infogan": {"arch": "mlp", "mlp_width": 16, "mlp_depth": 1, "z_dim": 4, "categorical": [3], "continuous": 1,
                "q_hidden": 8},
    "ddpm": {"T": 20, "channels": 8, "channel_mults": [1, 2], "attention_resolutions": [4], "num_res_blocks": 1},
    "flow": {"channels": 8, "channel_mults": [1, 2], "attention_resolutions": [4], "num_res_blocks": 1},
}


@pytest.mark.parametrize("family, kind", [("vae", "image"), ("gan", "image"), ("gan", "points"),
                                          ("infogan", "image"), ("ddpm", "image"), ("ddpm", "points"),
                                          ("flow", "image"), ("flow", "points")])
def test_every_family_keeps_the_contract(family, kind):
    model_cls, config_cls, options_cls = get_model(family)
    config = config_cls(**TINY[family])
    if family == "ddpm" and kind == "points":
        config = config_cls(T=20, mlp_width=16, mlp_depth=1)
    if family == "flow" and kind == "points":
        config = config_cls(mlp_width=16, mlp_depth=1, coupling="ot")
    data = image_data() if kind == "image" else point_data()
    model = check_contract(model_cls, config_cls, options_cls, config, data)
    expected_views = {("vae", "image"): {"samples", "reconstructions", "interpolations", "latent_map"},
                      ("gan", "points"): {"decision_surface"}, ("infogan", "image"): {"traversal_cont0"},
                      ("ddpm", "image"): {"denoising"}, ("flow", "image"): {"trajectory"}}
    assert set(model.views(torch.Generator().manual_seed(0))) == expected_views.get((family, kind), set())
    sampling = {"gan": ["G"]}                     # a GAN samples without D; the others need every network
    assert model.sampling_modules() == sampling.get(family, list(model.modules()))


def test_the_toy_model_keeps_the_contract():
    check_contract(Toy, ToyConfig, ToySampleOptions, ToyConfig(), point_data())


def test_a_family_without_metrics_refuses_every_metric():
    model = build(Toy, ToyConfig(), point_data().spec)
    with pytest.raises(ConfigError, match="no model-specific metrics"):
        model.evaluate("nll", point_data())


def test_a_model_missing_a_method_is_refused_when_built():
    class Half(GenerativeModel):
        def train_step(self, batch, ctx):
            return {}

    with pytest.raises(TypeError, match="sample"):
        Half()
