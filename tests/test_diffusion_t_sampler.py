"""Importance-sampled timesteps for L_vlb (Nichol & Dhariwal 2021, sec. 3.3): the probabilities,
the history, the draws, and the unbiasedness of the reweighted estimate on a fixed model."""

import math

import pytest
import torch

from genmodels.diffusion.gaussian_data import exact_bound_terms, optimal_eps_fn
from genmodels.diffusion.losses import diffusion_loss, sample_training_inputs
from genmodels.diffusion.schedule import NoiseSchedule, linear_betas
from genmodels.diffusion.t_sampler import (
    HISTORY,
    UNIFORM_SHARE,
    ImportanceTimestepSampler,
    draw_timesteps,
    importance_probabilities,
    importance_weights,
    push_history,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SCHED = NoiseSchedule.from_betas(linear_betas(20, 5e-3, 0.5))
DATA, MODEL = (0.5, 0.8), (0.5, 0.3)       # x_0 ~ N(0.5, 0.8^2), eps_theta optimal for N(0.5, 0.3^2)


def test_probabilities_are_uniform_until_every_history_is_full_then_follow_the_rms():
    T = 4
    history = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 0.0], [4.0, 0.0]], dtype=torch.float64)
    assert torch.equal(importance_probabilities(history, torch.tensor([2, 2, 2, 1])), torch.full((T,), 0.25,
                                                                                                  dtype=torch.float64))
    p = importance_probabilities(history, torch.tensor([2, 2, 2, 2]))
    rms = torch.tensor([math.sqrt(5.0), 2.0, 0.0, math.sqrt(8.0)], dtype=torch.float64)
    assert torch.allclose(p, (1 - UNIFORM_SHARE) * rms / rms.sum() + UNIFORM_SHARE / T, rtol=1e-12)
    assert float(p.sum()) == pytest.approx(1.0) and float(p.min()) > 0     # p_t > 0 even where L_t = 0


def test_history_keeps_the_last_values_per_step_in_ring_order():
    history, counts = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.long)
    push_history(history, counts, torch.tensor([1, 2, 1, 1, 3]), torch.tensor([1.0, 5.0, 2.0, 3.0, 7.0]))
    # step 1 got 1, 2, 3: the third value overwrote the first in slot 0
    assert history.tolist() == [[3.0, 2.0], [5.0, 0.0], [7.0, 0.0]] and counts.tolist() == [3, 1, 1]
    sampler = ImportanceTimestepSampler(3, history=2)
    sampler.update(torch.tensor([3, 3, 3]), torch.tensor([1.0, 2.0, 4.0]))
    assert sorted(sampler.history[2].tolist()) == [2.0, 4.0] and sampler.counts.tolist() == [0, 0, 3]
    assert set(sampler.state_dict()) == {"history", "counts"} and not list(sampler.parameters())


def test_history_matches_a_per_value_loop_with_many_draws_of_one_step():
    """Against the obvious loop (a deque of the last H values per step), over batches in which some
    steps are drawn far more than H times: the same values per row, the same counts."""
    T, H = 7, 3
    history, counts = torch.zeros(T, H, dtype=torch.float64), torch.zeros(T, dtype=torch.long)
    rows: list[list[float]] = [[] for _ in range(T)]
    seen = [0] * T
    g = torch.Generator().manual_seed(5)
    for _ in range(20):
        p = torch.softmax(3 * torch.randn(T, generator=g), 0)                       # often one dominant step
        t = torch.multinomial(p, 40, replacement=True, generator=g) + 1
        values = torch.randn(40, generator=g, dtype=torch.float64)
        push_history(history, counts, t, values)
        for step, v in zip(t.tolist(), values.tolist(), strict=True):
            rows[step - 1] = (rows[step - 1] + [v])[-H:]
            seen[step - 1] += 1
        assert counts.tolist() == seen
        for r in range(T):
            filled = sorted(history[r, :min(int(counts[r]), H)].tolist())
            assert filled == sorted(rows[r]), (r, filled, rows[r])
    assert int(counts.sum()) == 20 * 40


def test_probabilities_and_updates_read_nothing_back_to_the_host():
    reads = []

    class Reads(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in {"item", "tolist", "numpy", "__bool__", "__float__", "__int__"}:
                reads.append(func.__name__)
            return func(*args, **(kwargs or {}))

    sampler = ImportanceTimestepSampler(5, history=2)
    with Reads():
        for _ in range(4):
            t, w = sampler.sample(8, torch.Generator().manual_seed(0), "cpu")
            sampler.update(t, torch.rand(8, dtype=torch.float64) + 0.1)
    assert reads == []
    p = sampler.probabilities()
    assert int(sampler.counts.min()) >= 2 and float(p.max() / p.min()) != 1.0


def test_draws_follow_p_and_weights_are_one_over_T_p():
    p = torch.tensor([0.05, 0.6, 0.1, 0.25], dtype=torch.float64)
    n = 40_000
    t = draw_timesteps(p, n, torch.Generator().manual_seed(0), "cpu")
    assert t.dtype == torch.long and int(t.min()) >= 1 and int(t.max()) <= 4
    freq = torch.bincount(t - 1, minlength=4).double() / n
    assert ((freq - p).abs() <= 4 * (p * (1 - p) / n).sqrt()).all(), freq
    w = importance_weights(p, torch.tensor([1, 2, 3, 4]))
    assert torch.allclose(w.double(), 1.0 / (4 * p), rtol=1e-6)
    uniform = torch.full((4,), 0.25, dtype=torch.float64)
    assert torch.equal(importance_weights(uniform, t[:10]), torch.ones(10))


def _l_vlb_batches(x0_batches, p):
    """The L_vlb loss (bits) of `diffusion_loss` per batch, t drawn from p (None: uniform), for the
    fixed mis-fitted Gaussian model."""
    eps_fn = optimal_eps_fn(SCHED, *MODEL)
    g = torch.Generator().manual_seed(11)
    out = []
    for x0 in x0_batches:
        t, w = None, None
        if p is not None:
            t = draw_timesteps(p, x0.shape[0], g, "cpu")
            w = importance_weights(p, t)
        t, eps, xt = sample_training_inputs(SCHED, x0, g, t)
        losses = diffusion_loss(SCHED, eps_fn(xt, t), x0, xt, t, eps, loss="vlb", decoder="gaussian", t_weights=w)
        out.append(float(losses["l_vlb"]))
    return torch.tensor(out, dtype=torch.float64)


def test_the_importance_weighted_l_vlb_is_unbiased_and_has_a_smaller_variance():
    g = torch.Generator().manual_seed(10)
    m, s = DATA
    x0 = m + s * torch.randn(300, 100, 1, generator=g, dtype=torch.float64)      # 300 batches of 100
    # sum over t of E[L_{t-1}] in closed form (L_1:T-1 + L_0 of eq. 4.10, without L_T), in bits
    exact = exact_bound_terms(SCHED, *MODEL, x0.reshape(-1, 1), "beta")
    target = float((exact["L_1:T-1"] + exact["L_0"]).mean()) / math.log(2.0)
    # p from a history of the model's own L_t (as in training), for the same model
    sampler = ImportanceTimestepSampler(SCHED.T)
    eps_fn = optimal_eps_fn(SCHED, *MODEL)
    hg = torch.Generator().manual_seed(12)
    while bool((sampler.counts < HISTORY).any()):
        x = m + s * torch.randn(64, 1, generator=hg, dtype=torch.float64)
        t, eps, xt = sample_training_inputs(SCHED, x, hg)
        losses = diffusion_loss(SCHED, eps_fn(xt, t), x, xt, t, eps, loss="vlb", decoder="gaussian")
        sampler.update(t, losses["vlb_terms"])
    p = sampler.probabilities()
    assert float(p.max() / p.min()) > 5                                     # far from uniform
    uniform, weighted = _l_vlb_batches(x0, None), _l_vlb_batches(x0, p)
    for est in (uniform, weighted):
        se = float(est.std()) / math.sqrt(len(est))
        assert abs(float(est.mean()) - target) < 4 * se, (float(est.mean()), target, se)
    assert float(weighted.std()) < 0.7 * float(uniform.std())               # the point of sec. 3.3
    # negative control: the same draws without the 1 / (T p_t) weights are biased
    eps = torch.Generator().manual_seed(13)
    t = draw_timesteps(p, 30_000, eps, "cpu")
    x = m + s * torch.randn(30_000, 1, generator=eps, dtype=torch.float64)
    t, e, xt = sample_training_inputs(SCHED, x, eps, t)
    unweighted = float(diffusion_loss(SCHED, eps_fn(xt, t), x, xt, t, e, loss="vlb", decoder="gaussian")["l_vlb"])
    assert abs(unweighted - target) > 0.2 * target
