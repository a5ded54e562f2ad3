"""The flow family (flow matching / rectified flow): the path and velocity target against hand-computed
values, the time densities and the minibatch OT coupling, the samplers against stored fixed-seed
values, the exact likelihood against a Gaussian's closed form, reflow pairs reproducible from a seed,
and the family through the model and the command line."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import FakeContext

from genmodels.cli import main
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.diffusion.flow import (
    couple,
    draw_times,
    flow_log_likelihood,
    flow_matching_loss,
    gaussian_marginal,
    gaussian_velocity,
    mixture_velocity,
    ot_permutation,
    path_point,
    pseudo_huber_c,
    pseudo_huber_loss,
    u_shaped_density,
    u_shaped_quantile,
    velocity_target,
)
from genmodels.diffusion.flow_samplers import FLOW_SAMPLERS, euler, get_flow_sampler, straightness, time_grid
from genmodels.errors import ConfigError
from genmodels.models.flow import Flow, FlowConfig, FlowEvaluateOptions, FlowSampleOptions
from genmodels.models.flow.reflow import CHUNK, reflow_noise
from genmodels.theory import flow_claims

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_path_and_the_velocity_target_by_hand():
    x0 = torch.tensor([[1.0, -2.0], [0.0, 4.0]])
    eps = torch.tensor([[0.5, 3.0], [-1.0, 2.0]])
    t = torch.tensor([0.25, 1.0])
    # x_t = (1 - t) x_0 + t eps: 0.75 [1, -2] + 0.25 [0.5, 3]; at t = 1 the noise itself
    assert torch.allclose(path_point(x0, eps, t), torch.tensor([[0.875, -0.75], [-1.0, 2.0]]))
    assert torch.equal(path_point(x0, eps, torch.zeros(2)), x0)                    # t = 0: the data
    assert torch.equal(velocity_target(x0, eps), torch.tensor([[-0.5, 5.0], [-1.0, -2.0]]))   # eps - x_0
    # the loss is the per-example mean squared error to eps - x_0
    v = torch.tensor([[0.5, 5.0], [-1.0, 0.0]])
    assert torch.allclose(flow_matching_loss(v, x0, eps), torch.tensor([0.5, 2.0]))
    # d x_t / dt is the target: a finite difference of the path
    h = 1e-3
    slope = (path_point(x0, eps, t * 0 + 0.5 + h) - path_point(x0, eps, t * 0 + 0.5 - h)) / (2 * h)
    assert torch.allclose(slope, velocity_target(x0, eps), atol=1e-3)


def test_time_densities():
    g = torch.Generator().manual_seed(0)
    u = draw_times(20000, "uniform", g, "cpu")
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.01
    t = draw_times(20000, "logit-normal", g, "cpu")
    logit = torch.log(t / (1 - t))                          # Esser et al.: logit(t) ~ N(0, 1)
    assert abs(float(logit.mean())) < 0.03 and abs(float(logit.std()) - 1) < 0.03
    shifted = draw_times(20000, "logit-normal", g, "cpu", mean=1.0, std=0.5)
    logit = torch.log(shifted / (1 - shifted))
    assert abs(float(logit.mean()) - 1) < 0.03 and abs(float(logit.std()) - 0.5) < 0.03
    with pytest.raises(ConfigError, match="logit-normal, u-shaped, uniform"):
        draw_times(3, "beta", g, "cpu")


def test_u_shaped_density_against_its_closed_form():
    """Lee et al. 2024's U-shaped p(t) = a cosh(a (t - 1/2)) / (2 sinh(a / 2)): it integrates to 1, it is
    the even mixture of the densities proportional to exp(a t) and exp(a (1 - t)), the quantile inverts
    its CDF, and the draws follow it."""
    a = 4.0
    t = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    p = u_shaped_density(t, a)
    assert float(torch.trapezoid(p, t)) == pytest.approx(1.0, abs=1e-9)
    c = a / (math.exp(a) - 1)                                     # the normaliser of a exp(a t) on [0, 1]
    assert torch.allclose(p, 0.5 * c * (torch.exp(a * t) + torch.exp(a * (1 - t))), rtol=1e-12)
    assert float(p[0] / p[100_000]) == pytest.approx(math.cosh(2.0))    # the ends 3.76x the middle
    u = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    q = u_shaped_quantile(u, a)
    cdf = (torch.sinh(a * (q - 0.5)) / math.sinh(a / 2) + 1) / 2
    assert torch.allclose(cdf, u, atol=1e-12) and q[0] == 0 and q[2] == 0.5 and q[-1] == 1
    g = torch.Generator().manual_seed(0)
    drawn = draw_times(50_000, "u-shaped", g, "cpu", a=a)
    assert drawn.dtype == torch.float32 and 0 <= float(drawn.min()) and float(drawn.max()) <= 1
    draws = drawn.double()
    for x in (0.1, 0.25, 0.5):                                      # empirical CDF against F
        want = (math.sinh(a * (x - 0.5)) / math.sinh(a / 2) + 1) / 2
        assert float((draws <= x).double().mean()) == pytest.approx(want, abs=0.006)
    second = float(torch.trapezoid(p * (t - 0.5) ** 2, t))          # E[(t - 1/2)^2] by quadrature
    assert float(((draws - 0.5) ** 2).mean()) == pytest.approx(second, rel=0.02)


def test_pseudo_huber_loss_by_hand():
    x0, eps = torch.zeros(2, 2), torch.zeros(2, 2)                 # target u = 0
    v = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.allclose(pseudo_huber_loss(v, x0, eps, 1.0), torch.tensor([math.sqrt(26) - 1, 0.0]))
    small = torch.tensor([[1e-3, 0.0]])                             # |e| << c: e^2 / (2 c)
    assert float(pseudo_huber_loss(small, x0[:1], eps[:1], 1.0)) == pytest.approx(0.5e-6, rel=1e-3)
    big = torch.tensor([[300.0, 400.0]])                            # |e| >> c: |e| - c
    assert float(pseudo_huber_loss(big, x0[:1], eps[:1], 1.0)) == pytest.approx(499.0, rel=1e-5)
    assert pseudo_huber_c(784) == pytest.approx(0.00054 * 28)       # Song & Dhariwal's c for MNIST


def test_minibatch_ot_is_the_optimal_assignment():
    x0 = torch.tensor([[0.0], [10.0]])
    eps = torch.tensor([[10.5], [0.2]])
    assert ot_permutation(x0, eps).tolist() == [1, 0]
    assert torch.equal(couple(x0, eps, "ot"), torch.tensor([[0.2], [10.5]]))
    assert torch.equal(couple(x0, eps, "independent"), eps)
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    cost = lambda p: float(((x0 - eps[list(p)]) ** 2).sum())                  # noqa: E731
    best = min(itertools.permutations(range(6)), key=cost)
    assert cost(ot_permutation(x0, eps).tolist()) == pytest.approx(cost(best))
    with pytest.raises(ConfigError, match="valid choices: independent, ot"):
        couple(x0, eps, "sinkhorn")


def _field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed nonlinear velocity field: the samplers' stored values do not depend on any network."""
    t = t.to(x.dtype)[:, None]
    return torch.sin(x) * (1 + t) - 0.5 * x + t


# computed once with the samplers as written (float64, x_1 from seed 0), checked by the convergence below
STORED = {
    ("euler", 1): [[-0.687618, -0.861671], [-2.626592, -1.223974], [-0.858623, -1.127473]],
    ("euler", 2): [[-0.027033, -0.562458], [-2.748256, -0.418264], [-0.845136, -1.114032]],
    ("euler", 4): [[0.184145, -0.476916], [-2.856843, -0.228328], [-0.836166, -1.106263]],
    ("heun", 25): [[0.381204, -0.40836], [-3.051255, -0.077229], [-0.825799, -1.097727]],
    ("rk45", None): [[0.380881, -0.408463], [-3.052409, -0.077464], [-0.825832, -1.097735]],
}


@pytest.mark.parametrize("name, steps", sorted(STORED, key=str))
def test_samplers_match_stored_values(name, steps):
    x_1 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = get_flow_sampler(name).fn(_field, x_1, steps=steps)
    assert torch.allclose(out, torch.tensor(STORED[(name, steps)], dtype=torch.float64), atol=2e-6)


def test_samplers_converge_to_each_other_and_integrate_from_noise_to_data():
    x_1 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = get_flow_sampler("rk45").fn(_field, x_1, rtol=1e-9, atol=1e-9)
    errors = [float((euler(_field, x_1, steps=k) - ref).abs().max()) for k in (8, 16, 32)]
    assert errors[0] > 1.8 * errors[1] > 3.2 * errors[2]                          # first order
    assert float((get_flow_sampler("heun").fn(_field, x_1, steps=16) - ref).abs().max()) < errors[2] / 10
    seen = []
    euler(_field, x_1, steps=4, callback=lambda i, t, x, v: seen.append((i, t)))
    assert seen == [(4, 1.0), (3, 0.75), (2, 0.5), (1, 0.25)] and time_grid(2) == [1.0, 0.5, 0.0]
    assert set(FLOW_SAMPLERS) == {"euler", "heun", "rk45"}
    with pytest.raises(ConfigError, match="euler, heun, rk45"):
        get_flow_sampler("dopri8")


def test_a_straight_flow_is_one_euler_step_and_has_zero_straightness():
    x_0 = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    x_1 = torch.tensor([[0.3, -0.2], [1.0, 1.0]])
    const = lambda x, t: x_1 - x_0                                                # noqa: E731
    assert torch.allclose(euler(const, x_1, steps=1), x_0)
    assert float(straightness(const, x_1, steps=7).abs().max()) < 1e-12
    stored = straightness(_field, torch.randn(3, 2, generator=torch.Generator().manual_seed(0),
                                              dtype=torch.float64), steps=10)
    assert torch.allclose(stored, torch.tensor([0.238568, 0.185191, 0.000483], dtype=torch.float64), atol=2e-6)


def test_the_closed_form_velocity_keeps_the_path_marginal():
    m, s = 0.5, 0.8
    for t in (0.2, 0.7):
        mean, var = gaussian_marginal(t, m, s)
        assert mean == pytest.approx((1 - t) * m) and var == pytest.approx((1 - t) ** 2 * s**2 + t**2)
    # v* = E[eps - x_0 | x_t] by Monte Carlo in a thin slice of x_t
    g = torch.Generator().manual_seed(0)
    x0 = m + s * torch.randn(400000, 1, generator=g, dtype=torch.float64)
    eps = torch.randn(400000, 1, generator=g, dtype=torch.float64)
    t = torch.full((400000,), 0.4, dtype=torch.float64)
    xt = path_point(x0, eps, t)
    near = (xt - 0.6).abs().reshape(-1) < 0.02
    mc = float(velocity_target(x0, eps)[near].mean())
    assert mc == pytest.approx(float(gaussian_velocity(torch.tensor([[0.6]]), torch.tensor([0.4]), m, s)), abs=0.02)
    # one component: the mixture's velocity is the Gaussian's
    x = torch.randn(5, 2, generator=g, dtype=torch.float64)
    tt = torch.rand(5, generator=g, dtype=torch.float64)
    mix = mixture_velocity(x, tt, torch.tensor([1.0]), torch.tensor([[m, m]]), torch.tensor([s]))
    assert torch.allclose(mix, gaussian_velocity(x, tt, m, s))


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_the_exact_likelihood_of_the_closed_form_field_is_the_gaussians(trace):
    m, s = 0.5, 0.8
    x = m + s * torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    result = flow_log_likelihood(lambda y, t: gaussian_velocity(y, t, m, s), x, trace=trace, rtol=1e-7, atol=1e-7,
                                 generator=torch.Generator().manual_seed(2))
    exact = (-0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)).sum(dim=1)
    # a linear field's Jacobian is a multiple of I, so Rademacher probes give the trace exactly too
    assert torch.allclose(result.log_p, exact, atol=1e-5)
    assert result.nfe > 0


def test_the_theory_checks_pass_and_catch_a_wrong_field():
    assert flow_claims.check_gaussian_likelihood().passed
    assert flow_claims.check_gaussian_marginals(n=4000).passed
    assert flow_claims.check_mixture_transport(n=50).passed
    wrong = lambda x, t, m, s: gaussian_velocity(x, t, m, 0.9 * s)                # noqa: E731
    assert not flow_claims.check_gaussian_likelihood(wrong).passed
    assert not flow_claims.check_gaussian_marginals(wrong, n=4000).passed
    uniform_posterior = lambda x, t, w, mu, sd: mixture_velocity(x, t, w, mu, sd.mean().expand(3))   # noqa: E731
    assert not flow_claims.check_mixture_transport(uniform_posterior, n=50).passed
    sign_flipped = lambda v, x0, eps: flow_matching_loss(v, eps, x0)                # noqa: E731
    assert not flow_claims.check_trained_field(sign_flipped, steps=150).passed


# --- the model -------------------------------------------------------------------------------------
def _points(n: int = 256) -> Dataset:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    return Dataset(x=centres[torch.arange(n) % 2] + 0.1 * torch.randn(n, 2, generator=g), y=torch.arange(n) % 2,
                   name="two-blobs", kind="points", num_classes=2)


def _build(config: FlowConfig, spec: DataSpec, seed: int = 0) -> Flow:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Flow(config, spec)


def _train(model: Flow, data: Dataset, steps: int) -> None:
    ctx = FakeContext(data.x, data.y, batch_size=64, seed=1)
    for step in range(steps):
        ctx.step = step
        model.train_step(ctx.next_batch(), ctx)


TINY = {"mlp_width": 32, "mlp_depth": 1, "mlp_octaves": 0}


def test_defaults_depend_on_the_kind_of_data():
    points = FlowConfig().for_data(DataSpec("points", (2,), 0))
    images = FlowConfig().for_data(DataSpec("image", (1, 8, 8), 0))
    assert (points.time_density, images.time_density, points.lr) == ("uniform", "logit-normal", 1e-3)
    assert FlowConfig(time_density="uniform").for_data(DataSpec("image", (1, 8, 8), 0)).time_density == "uniform"
    with pytest.raises(ConfigError, match="reflow_pairs"):
        FlowConfig(reflow_pairs=0).validate()
    for bad, field in (({"density_a": 0.0}, "density_a"), ({"huber_c": -1.0}, "huber_c"),
                       ({"loss": "l1"}, "loss"), ({"reflow_pairs_from": "run"}, "reflow_from")):
        with pytest.raises(ConfigError, match=field):
            FlowConfig(**bad).validate()
    with pytest.raises(ConfigError, match="unet needs image data"):
        Flow(FlowConfig(net="unet"), DataSpec("points", (2,), 0))


def test_guidance_and_labels_of_a_conditional_flow():
    data = _points()
    model = _build(FlowConfig(class_conditional=True, **TINY), data.spec)
    _train(model, data, 3)
    g = lambda: torch.Generator().manual_seed(0)                                   # noqa: E731
    for options in (FlowSampleOptions(sampler="euler", steps=4, label=1, guidance=3.0),
                    FlowSampleOptions(sampler="heun", steps=2, guidance=0.0)):
        assert model.sample(5, options, generator=g()).shape == (5, 2)
    with pytest.raises(ConfigError, match="label"):
        model.sample(2, FlowSampleOptions(label=2), generator=g())
    plain = _build(FlowConfig(**TINY), data.spec)
    with pytest.raises(ConfigError, match="class-conditional"):
        plain.sample(2, FlowSampleOptions(guidance=2.0))


def test_evaluate_nll_and_straightness_on_points_and_images():
    data = _points(64)
    model = _build(FlowConfig(coupling="ot", **TINY), data.spec)
    _train(model, data, 3)
    nll = model.evaluate("nll", data, FlowEvaluateOptions(ode_rtol=1e-4, ode_atol=1e-4), n=8,
                         generator=torch.Generator().manual_seed(0))
    assert set(nll) == {"nats_per_dim_ode", "ode_nfe", "n"} and math.isfinite(nll["nats_per_dim_ode"])
    s = model.evaluate("straightness", data, FlowEvaluateOptions(straightness_steps=5), n=10,
                       generator=torch.Generator().manual_seed(0))
    assert s["straightness"] >= 0 and s["n"] == 10
    images = Dataset(x=(torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).round() / 127.5 - 1,
                     name="tiny", kind="image")
    unet = _build(FlowConfig(channels=8, channel_mults=[1, 2], attention_resolutions=[4]), images.spec)
    bpd = unet.evaluate("nll", images, FlowEvaluateOptions(ode_rtol=1e-3, ode_atol=1e-3), n=2,
                        generator=torch.Generator().manual_seed(0))
    assert 0 < bpd["bpd_ode"] < 20


def test_reflow_noise_is_a_function_of_the_seed_and_the_index():
    a = reflow_noise(CHUNK + 5, (2,), seed=7)
    assert torch.equal(reflow_noise(3, (2,), seed=7), a[:3])               # pair i does not depend on n
    assert torch.equal(reflow_noise(CHUNK + 5, (2,), seed=7), a)
    assert not torch.equal(reflow_noise(3, (2,), seed=8), a[:3])


def test_reflow_pairs_are_the_previous_flows_samples_and_reproducible(capfd):
    data = _points()
    previous = _build(FlowConfig(**TINY), data.spec)
    _train(previous, data, 20)
    config = FlowConfig(reflow_from="previous-run", reflow_pairs=40, reflow_seed=3, reflow_sampler="euler",
                        reflow_steps=8, **TINY)
    first, second = _build(config, data.spec, seed=1), _build(config, data.spec, seed=2)
    first.start_reflow(previous)
    second.start_reflow(previous)
    assert torch.equal(first.pairs.x0, second.pairs.x0) and bool(first.pairs.filled)
    shown = _build(config, data.spec, seed=4)
    shown.start_reflow(previous, progress=True)          # a bar on stderr, the same pairs
    assert torch.equal(shown.pairs.x0, first.pairs.x0) and "reflow pairs" in capfd.readouterr().err
    # pair i: the previous flow's ODE from noise i, in model space
    noise = reflow_noise(40, (2,), seed=3)
    want = euler(previous.velocity_fn(), noise, steps=8)
    assert torch.allclose(first.pairs.x0, want, atol=1e-6)
    assert torch.equal(first.net.state_dict()["inp.weight"], previous.net.state_dict()["inp.weight"])
    loss = first.train_step((data.x[:16], data.y[:16]), FakeContext(data.x, data.y, batch_size=16, seed=1))["loss"]
    assert math.isfinite(float(loss))
    assert first.sampling_modules() == ["velocity", "standardiser"] and "reflow_pairs" in first.modules()
    with pytest.raises(ConfigError, match="mlp_width"):
        _build(FlowConfig(reflow_from="x", reflow_pairs=4, mlp_width=16, mlp_depth=1, mlp_octaves=0),
               data.spec).start_reflow(previous)


def test_the_configured_loss_is_the_one_trained():
    """train_step minimises model.loss: with the same weights and draws, the pseudo-Huber loss with a
    large c is ||e||^2 / (2 c) = D mse / (2 c) (D = 2 here), the squared error's D / (2 c) times."""
    data = _points()
    losses = {}
    for loss in ("mse", "pseudo-huber"):
        model = _build(FlowConfig(loss=loss, huber_c=1000.0, time_density="u-shaped", **TINY), data.spec)
        ctx = FakeContext(data.x, data.y, batch_size=64, seed=1)
        losses[loss] = float(model.train_step(ctx.next_batch(), ctx)["loss"])
    assert losses["pseudo-huber"] == pytest.approx(losses["mse"] * 2 / 2000, rel=1e-4)
    model = _build(FlowConfig(loss="pseudo-huber", **TINY), data.spec)     # c = 0.00054 sqrt(2) by default
    e = torch.tensor([[0.3, 0.4]])
    assert float(model.loss_per_example(e, torch.zeros(1, 2), torch.zeros(1, 2))) == \
        pytest.approx(math.sqrt(0.25 + pseudo_huber_c(2) ** 2) - pseudo_huber_c(2))


def test_train_reflow_and_evaluate_through_the_command_line(tmp_path, capsys):
    fast = ["--batch-size", "32", "--no-progress", "--threads", "1", "--set", "trainer.report=false",
            "--mlp-width", "32", "--mlp-depth", "1"]
    first, second = tmp_path / "rf1", tmp_path / "rf2"
    assert main(["train", "flow", "--data", "ring8", "--steps", "30", "--out", str(first), *fast]) == 0
    capsys.readouterr()
    assert main(["train", "flow", "--data", "ring8", "--steps", "10", "--out", str(second), *fast,
                 "--reflow-from", str(first), "--reflow-pairs", "64", "--reflow-sampler", "euler",
                 "--reflow-steps", "4"]) == 0
    assert f"drawing 64 reflow pairs from {first} (euler, 4 steps)" in capsys.readouterr().err
    # a third reflow takes the second's pairs instead of drawing them again, with other training settings
    third = tmp_path / "rf3"
    pairs = ["--reflow-from", str(first), "--reflow-pairs", "64", "--reflow-sampler", "euler", "--reflow-steps", "4"]
    assert main(["train", "flow", "--data", "ring8", "--steps", "5", "--out", str(third), *fast, *pairs,
                 "--reflow-pairs-from", str(second), "--time-density", "u-shaped", "--loss", "pseudo-huber"]) == 0
    assert f"taking the 64 reflow pairs of {second} from {first} (euler, 4 steps)" in capsys.readouterr().err
    kept = [torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["modules"]["reflow_pairs"]
            for run in (second, third)]
    assert torch.equal(kept[0]["x0"], kept[1]["x0"]) and torch.equal(kept[0]["labels"], kept[1]["labels"])
    # pairs drawn otherwise, or a run that drew none, are refused before anything is written
    assert main(["train", "flow", "--data", "ring8", "--steps", "5", "--out", str(tmp_path / "no"), *fast,
                 *pairs[:3], "32", *pairs[4:], "--reflow-pairs-from", str(second)]) == 2
    assert "model.reflow_pairs: 64 there vs 32 here" in capsys.readouterr().err
    assert main(["train", "flow", "--data", "ring8", "--steps", "5", "--out", str(tmp_path / "no"), *fast,
                 *pairs, "--reflow-pairs-from", str(first)]) == 2
    assert "is not a reflow run" in capsys.readouterr().err and not (tmp_path / "no").exists()
    assert main(["evaluate", str(second), "--metrics", "straightness", "--n", "20", "--straightness-steps", "4"]) == 0
    assert "straightness" in capsys.readouterr().out
    assert main(["sample", str(second), "--n", "6", "--sampler", "euler", "--steps", "2",
                 "--out", str(tmp_path / "s.npy")]) == 0


def test_compare_reads_the_flow_likelihood():
    """`genmodels compare` puts the flow's ODE likelihood in its likelihood column (the DDPM's bound first
    when a row has both)."""
    from genmodels.report.compare import likelihood_of

    flow = {"nll:bpd_ode": {"value": 1.25}, "nll:ode_nfe": {"value": 300.0}}
    assert likelihood_of(flow, 1)["value"] == 1.25 and likelihood_of(flow, 1)["unit"] == "bits/dim"
    points = {"nll:nats_per_dim_ode": {"value": -0.5}}
    assert likelihood_of(points, 1)["unit"] == "nats/dim"
    both = {**flow, "nll:bpd_total": {"value": 2.0}}
    assert likelihood_of(both, 1)["value"] == 2.0
    assert likelihood_of({"nll:ode_nfe": {"value": 3.0}}, 1) is None
