"""No float64 tensor on a device that has none (MPS): every family's train step, sampler and own
metrics, and the feature-metric path, run on a stand-in device under `Float64Guard`
(tests/float64_guard.py), which raises where a float64 tensor would land on the device. Schedules
and statistics stay float64 on the CPU and enter the device in float32."""

from __future__ import annotations

import pytest
import torch
from conftest import FakeContext
from float64_guard import STAND_IN, Float64Guard, Float64OnDevice
from test_model_contract import TINY, image_data, point_data

from genmodels.data.dataset import Dataset
from genmodels.metrics import features as F
from genmodels.metrics.evaluate import EvalConfig, feature_metrics
from genmodels.models.registry import get_model

pytestmark = pytest.mark.usefixtures("one_thread")

CASES = [pytest.param(family, kind)
         for family, kind in [("vae", "image"), ("gan", "image"), ("gan", "points"), ("infogan", "image"),
                              ("ddpm", "image"), ("ddpm", "points"), ("flow", "image"), ("flow", "points")]]
POINTS = {"ddpm": {"T": 20, "mlp_width": 16, "mlp_depth": 1}, "flow": {"mlp_width": 16, "mlp_depth": 1}}


def test_the_guard_catches_a_float64_schedule_moved_to_the_device():
    schedule = torch.linspace(0, 1, 5, dtype=torch.float64)            # host float64: allowed
    with Float64Guard() as guard:
        x = torch.zeros(3, device=STAND_IN)
        assert (x + schedule[1:4].float().to(STAND_IN)).dtype == torch.float32
        with pytest.raises(Float64OnDevice, match="float64"):
            schedule.to(STAND_IN)
        with pytest.raises(Float64OnDevice):
            x.double()
        assert guard.calls > 0


def _serving(ctx: FakeContext, guard: Float64Guard) -> None:
    """Every minibatch the context hands out is marked as on the device."""
    serve = ctx.next_batch

    def next_batch():
        batch = serve()
        guard.mark(batch)
        return batch

    ctx.next_batch = next_batch


@pytest.mark.parametrize("family, kind", CASES)
def test_no_float64_reaches_the_device(family, kind):
    model_cls, config_cls, _ = get_model(family)
    data = image_data() if kind == "image" else point_data()
    config = config_cls(**(POINTS[family] if kind == "points" and family in POINTS else TINY[family]))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = model_cls(config, data.spec, STAND_IN)
    ctx = FakeContext(data.x, data.y, batch_size=16, seed=1)
    ctx.device, ctx.generator = STAND_IN, torch.Generator(device=STAND_IN).manual_seed(1)
    with Float64Guard() as guard:
        guard.mark_modules(model.modules())
        _serving(ctx, guard)
        for step in range(2):
            ctx.step = step
            model.train_step(ctx.next_batch(), ctx)
        x = model.sample(4, generator=torch.Generator(device=STAND_IN).manual_seed(2))
        assert x.dtype == torch.float32
        subset = Dataset(x=data.x[:4], y=data.y[:4] if data.y is not None else None, name=data.name, kind=data.kind,
                         num_classes=data.num_classes)
        guard.mark(subset.x)
        for metric in model.metric_names:
            model.evaluate(metric, subset, n=4, batch_size=4, k=2,
                           generator=torch.Generator(device=STAND_IN).manual_seed(3), progress=False)


def test_feature_metrics_keep_their_float64_on_the_host():
    """The shipped classifier on the device, its features and statistics (float64) on the CPU."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1
    extractor = F.get_extractor("mnist", device=STAND_IN)
    cfg = EvalConfig(kid_subsets=2, kid_subset_size=16)
    with Float64Guard() as guard:
        guard.mark_modules({"classifier": extractor.classifier})
        ref = F.extract(extractor, F.batches_of(images[:32], 16), 32, progress=False)
        other = F.extract(extractor, F.batches_of(images[32:], 16), 32, progress=False)
        out = feature_metrics(ref, other, ["fd", "kid", "prdc", "is"], extractor, cfg)
    assert set(out) >= {"FD-mnist", "KID-mnist", "precision", "IS-mnist"}
