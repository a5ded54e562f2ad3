"""The evaluation driver and `genmodels evaluate`: corruption monotonicity on real MNIST, the
real-data floor, the .npy path, model-specific metrics, points data and the error messages."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from genmodels.cli import main
from genmodels.errors import ConfigError, DataError
from genmodels.evaluation import evaluate
from genmodels.metrics import features as F
from genmodels.metrics.evaluate import EvalConfig, samples_from_array
from genmodels.metrics.frechet import frechet_distance_features
from genmodels.metrics.prdc import precision_recall_density_coverage
from genmodels.models.base import GenerativeModel


@pytest.fixture(scope="module")
def mnist5k():
    from genmodels import data

    try:
        return data.load("mnist5k", split="train"), data.load("mnist5k", split="test")
    except DataError as e:
        pytest.skip(str(e))


def fast_config(**kw) -> EvalConfig:
    base = dict(n=500, batch_size=250, kid_subsets=10, kid_subset_size=200, device="cpu", progress=False)
    return EvalConfig(**{**base, **kw})


def test_metrics_are_monotone_in_gaussian_noise(mnist5k):
    train, test = mnist5k
    ex = F.get_extractor("mnist")
    ref = F.extract(ex, F.batches_of(train.x, 500), progress=False).features  # all 4,000 training digits
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(test.x.shape, generator=g)
    fds, precisions = [], []
    for sigma in (0.0, 0.5, 1.0, 1.6):
        noisy = (test.x + sigma * noise).clamp(-1, 1)
        f = F.extract(ex, F.batches_of(noisy, 500), progress=False).features
        fds.append(frechet_distance_features(ref, f))
        precisions.append(precision_recall_density_coverage(ref, f)["precision"])
    assert all(a < b for a, b in itertools.pairwise(fds)), fds
    assert all(a > b for a, b in itertools.pairwise(precisions)), precisions
    assert fds[-1] > 20 * fds[0] and precisions[0] > 0.6 and precisions[-1] < 0.3


def test_samples_npy_and_real_vs_real_through_the_cli(mnist5k, tmp_path, capsys):
    train, test = mnist5k
    noise = torch.randn(test.x.shape, generator=torch.Generator().manual_seed(1))
    noisy = ((test.x + 0.5 * noise).clamp(-1, 1) + 1) / 2
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    pick = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(2))[:300]  # mnist5k is sorted by class
    np.save(good, ((train.x[pick] + 1) / 2).numpy())  # real training digits, [0, 1] as `genmodels sample` writes
    np.save(bad, noisy[:300].numpy())
    common = ["--metrics", "fd,kid,prdc,is", "--n", "300", "--batch-size", "300", "--kid-subsets", "10",
              "--kid-subset-size", "150", "--device", "cpu", "--no-progress", "--json"]
    out = {}
    for name, path in (("good", good), ("bad", bad)):
        assert main(["evaluate", "--samples", str(path), "--data", "mnist5k", *common]) == 0
        out[name] = json.loads(capsys.readouterr().out)
    m_good, m_bad = out["good"]["metrics"], out["bad"]["metrics"]
    assert set(m_good) == {"FD-mnist", "KID-mnist", "precision", "recall", "density", "coverage", "IS-mnist"}
    assert "FID" not in m_good  # honest names: these are classifier features
    assert m_bad["FD-mnist"]["value"] > 5 * m_good["FD-mnist"]["value"]
    # real training digits measure like the floor (the floor is test vs other training digits)
    assert m_good["FD-mnist"]["value"] < 3 * m_good["FD-mnist"]["real_floor"] + 1.0
    assert m_good["IS-mnist"]["value"] > 8.0 and m_good["KID-mnist"]["std"] is not None
    assert out["good"]["n_samples"] == 300 and out["good"]["n_floor"] == 300

    assert main(["evaluate", "--real-vs-real", "mnist5k", *common]) == 0
    floor = json.loads(capsys.readouterr().out)
    assert floor["metrics"]["FD-mnist"]["value"] is None
    assert floor["metrics"]["FD-mnist"]["real_floor"] == pytest.approx(m_good["FD-mnist"]["real_floor"])
    assert main(["evaluate", "--samples", str(bad), "--data", "mnist5k", *common[:-1]]) == 0  # the table
    table = capsys.readouterr().out
    assert "real floor" in table and "FD-mnist" in table and f"{m_bad['FD-mnist']['value']:.4g}" in table

    assert main(["evaluate", "--samples", str(good), *common]) == 2  # --data missing
    assert "--data" in capsys.readouterr().err


class DummyModel(GenerativeModel):
    """Samples are real digits (or points); has one model-specific metric."""

    metric_names = ("nll",)

    def __init__(self, pool: torch.Tensor):
        self.pool = pool
        self.calls = []

    def train_step(self, batch, ctx):
        raise AssertionError("not trained")

    def sample(self, n, options=None, *, generator=None):
        idx = torch.randint(0, len(self.pool), (n,), generator=generator)
        return self.pool[idx]

    def modules(self):
        return {"net": torch.nn.Linear(1, 1)}

    def optimizers(self):
        return {}

    def evaluate(self, metric, data, options=None, **keywords):
        self.calls.append((metric, len(data), keywords))
        return {"nll": 1.5, "nll_bits_per_dim": 0.25}


def test_model_path_with_model_specific_metrics(mnist5k):
    from genmodels.sampling import sample_batches

    train, test = mnist5k
    model = DummyModel(train.x)
    g = torch.Generator().manual_seed(0)
    cfg = fast_config(metrics="fd,nll", n=300, k=7)
    report = evaluate(train, test, cfg, model=model, n_samples=300,
                      samples=lambda bs: sample_batches(model, 300, bs, g, (1, 28, 28), progress=False))
    rows = {r.name: r for r in report.rows}
    assert rows["nll"].value == 1.5 and rows["nll"].floor is None
    assert rows["nll:nll_bits_per_dim"].value == 0.25
    assert rows["FD-mnist"].floor is not None
    metric, size, options = model.calls[0]
    assert metric == "nll" and size == 300 and options["k"] == 7 and options["n"] == 300
    with pytest.raises(ConfigError, match="valid choices"):
        evaluate(train, test, fast_config(metrics="fd,elbo"), model=model, n_samples=10, samples=lambda bs: iter(()))


def test_points_data_modes_and_raw_features():
    from genmodels import data

    train, test = data.load("ring8", split="train"), data.load("ring8", split="test")
    collapsed = train.x[train.y == 0][:500]  # one mode only
    cfg = fast_config(n=500)
    spread = train.x[torch.randperm(len(train.x), generator=torch.Generator().manual_seed(0))[:500]]
    report = evaluate(train, test, cfg, samples=lambda bs: iter([spread]), n_samples=500)
    rows = {r.name: r for r in report.rows}
    assert set(rows) >= {"FD-raw", "KID-raw", "precision", "modes_captured", "high_quality"}
    assert rows["modes_captured"].value == 8 and rows["modes_captured"].floor == 8
    one_mode = evaluate(train, test, cfg, samples=lambda bs: iter([collapsed]), n_samples=len(collapsed))
    rows1 = {r.name: r for r in one_mode.rows}
    assert rows1["modes_captured"].value < 8 and rows1["FD-raw"].value > 10 * rows["FD-raw"].value
    with pytest.raises(ConfigError, match="class probabilities"):
        evaluate(train, test, fast_config(metrics="is"), samples=lambda bs: iter([train.x[:50]]), n_samples=50)


def test_user_module_extractor(mnist5k):
    train, test = mnist5k
    net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Flatten())  # 49-d pooled pixels
    ex = F.ModuleExtractor(net, name="pool4")
    report = evaluate(train, test, fast_config(metrics="fd,prdc", n=300), extractor=ex,
                      samples=lambda bs: iter([test.x[:300]]), n_samples=300)
    rows = {r.name: r for r in report.rows}
    assert "FD-pool4" in rows and rows["FD-pool4"].value >= 0


def test_samples_from_array_layouts_and_errors():
    img = np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)  # [0, 1], no channel axis
    x, note = samples_from_array(img, (1, 28, 28), "image", "f.npy")
    assert x.shape == (4, 1, 28, 28) and float(x.min()) >= -1 and "[0, 1]" in note
    x8, note8 = samples_from_array((img * 255).astype(np.uint8)[..., None], (1, 28, 28), "image", "f.npy")
    assert x8.shape == (4, 1, 28, 28) and "uint8" in note8
    with pytest.raises(DataError, match=r"\[0, 1\] or \[-1, 1\]"):
        samples_from_array(img * 3, (1, 28, 28), "image", "f.npy")
    with pytest.raises(DataError, match="do not match"):
        samples_from_array(np.zeros((4, 3, 8, 8), np.float32), (1, 28, 28), "image", "f.npy")
    with pytest.raises(DataError, match="NaN"):
        samples_from_array(np.full((2, 2), np.nan), (2,), "points", "f.npy")


def test_unknown_names_list_the_choices(mnist5k):
    train, test = mnist5k
    with pytest.raises(ConfigError, match="valid choices"):
        evaluate(train, test, fast_config(metrics="fd,bogus"))
    with pytest.raises(ConfigError, match="valid choices"):
        F.get_extractor("resnet")
    with pytest.raises(ConfigError, match="weights file"):
        F.get_extractor("inception")
    with pytest.raises(ConfigError, match="no default feature extractor"):
        F.default_extractor("cifar10", "image", (3, 32, 32))


def test_inception_extractor_from_a_local_weights_file():
    """Runs only where torch-fidelity is installed and GENMODELS_INCEPTION_WEIGHTS names its
    InceptionV3 weights file (nothing is downloaded)."""
    import os

    path = os.environ.get("GENMODELS_INCEPTION_WEIGHTS")
    if not path or not os.path.isfile(path):
        pytest.skip("set GENMODELS_INCEPTION_WEIGHTS to torch-fidelity's InceptionV3 weights file")
    pytest.importorskip("torch_fidelity")
    ex = F.get_extractor("inception", weights=path)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert ex.features(x).shape == (4, 2048)
    p = ex.probabilities(x)
    assert p.shape == (4, 1008) and torch.allclose(p.sum(1), torch.ones(4), atol=1e-4)
    assert F.metric_label("FD", ex) == "FID" and F.metric_label("KID", ex) == "KID"


def test_evaluate_a_run_directory_end_to_end(tmp_path, capsys):
    run = tmp_path / "vae-run"
    assert main(["train", "vae", "--data", "mnist5k", "--steps", "2", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    args = ["evaluate", str(run), "--metrics", "fd,prdc,nll", "--n", "200", "--k", "2", "--device", "cpu",
            "--no-progress", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert {"FD-mnist", "precision", "coverage", "nll"} <= set(m) and result["n_samples"] == 200
    assert m["nll"]["real_floor"] is None and m["FD-mnist"]["real_floor"] is not None
    assert m["FD-mnist"]["value"] > m["FD-mnist"]["real_floor"]  # two training steps are far from the data
    assert main(["evaluate", str(run), "--metrics", "fd", "--n", "50", "--sample-option", "bogus=1",
                 "--no-progress"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_parzen_is_wired_with_a_disjoint_validation_set(mnist5k):
    train, test = mnist5k
    pick = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(4))[:200]
    blurred = torch.nn.functional.avg_pool2d(train.x[pick], 3, stride=1, padding=1)
    report = evaluate(train, test, fast_config(metrics="parzen", n=200), samples=lambda bs: iter([blurred]),
                      n_samples=200)
    rows = {r.name: r for r in report.rows}
    assert set(rows) == {"parzen_ll", "parzen_sigma"}
    assert rows["parzen_ll"].std > 0 and rows["parzen_ll"].floor_std > 0
    assert 0.1 - 1e-9 <= rows["parzen_sigma"].value <= 1.0 + 1e-9
    with pytest.raises(ConfigError, match="images"):
        from genmodels import data

        ring = data.load("ring8", split="test")
        evaluate(ring, ring, fast_config(metrics="parzen", n=100))
