"""Bucketed gradient averaging (`genmodels.training.grad_buckets`) on 2 gloo processes: it equals one
flat all-reduce to the bit, its all-reduces start while the backward pass runs, it handles
parameters without a gradient and a non-finite loss on one rank, and bf16 compression stays within
its error bound. Plus an end-to-end torchrun check: a DDPM run with many small buckets ends with the
weights of the same run with one flat all-reduce, bit for bit."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_distributed import COMMON, DDPM, assert_close_states, state, torchrun
from test_trainer_resume import _assert_same_tensors

from genmodels.training.grad_buckets import GradientBuckets, split_into_buckets

WORLD = 2
TINY_MB = 2e-3            # about 2 KiB: the test network's 9 tensors fall into several buckets
BF16_UNIT = 2.0 ** -8     # unit roundoff of bfloat16 (8 significant bits)


class Net(torch.nn.Module):
    """Four layers, a head only rank 0 uses and a head nobody uses."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                                        torch.nn.Tanh(), torch.nn.Linear(32, 8))
        self.rank0_head = torch.nn.Linear(8, 1)
        self.unused_head = torch.nn.Linear(8, 1)

    def loss(self, x: torch.Tensor, rank: int) -> torch.Tensor:
        h = self.body(x)
        out = (h ** 2).mean()
        return out + self.rank0_head(h).mean() if rank == 0 else out


def _backward(net: Net, rank: int, bad: bool = False) -> tuple[torch.Tensor, list[torch.nn.Parameter]]:
    net.zero_grad(set_to_none=True)
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(100 + rank))
    loss = net.loss(x, rank) * (float("nan") if bad else 1.0)
    return loss, list(net.parameters())


def _flat_reference(params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    """The plain average: every gradient (zeros where absent) in one all-reduce, summed, divided by W."""
    grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel()) for p in params]
    present = torch.tensor([float(p.grad is not None) for p in params])
    flat = torch.cat([*grads, present])
    dist.all_reduce(flat)
    n = sum(p.numel() for p in params)
    means, counts = flat[:n] / WORLD, flat[n:]
    out, offset = [], 0
    for p, c in zip(params, counts.tolist(), strict=True):
        out.append(means[offset:offset + p.numel()].view_as(p).clone() if c > 0 else None)
        offset += p.numel()
    return out


def _bucketed(net: Net, rank: int, compression: str = "none", bad: bool = False, steps: int = 2):
    """`steps` identical steps (the buckets are rebuilt in arrival order after the first); the last
    step's averaged gradients, how many buckets it started during the backward pass, of how many."""
    buckets = GradientBuckets(WORLD, TINY_MB, compression)
    for _ in range(steps):
        loss, params = _backward(net, rank, bad)
        buckets.arm(("net",), params, ~torch.isfinite(loss.detach()))
        loss.backward()
        plan = buckets._plans[("net",)]
        started_in_backward = plan.launched
        any_bad = buckets.finish()
    grads = [p.grad.clone() if p.grad is not None else None for p in params]
    buckets.close()
    return grads, started_in_backward, len(plan.buckets), bool(any_bad)


def _local_grads(net: Net, rank: int) -> list[torch.Tensor | None]:
    loss, params = _backward(net, rank)
    loss.backward()
    return [p.grad.clone() if p.grad is not None else None for p in params]


def _worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    torch.manual_seed(0)                       # this worker process's own global RNG: the same net on both ranks
    net = Net()
    bucketed, started, n_buckets, any_bad = _bucketed(net, rank)
    exact_local = _local_grads(net, rank)
    reference = _flat_reference(list(net.parameters()))
    compressed, *_ = _bucketed(net, rank, "bf16")
    *_, bad_seen = _bucketed(net, rank, bad=rank == 1)          # only rank 1's loss is NaN
    hooks_left = sum(len(p._post_accumulate_grad_hooks or {}) for p in net.parameters())
    torch.save({"bucketed": bucketed, "reference": reference, "compressed": compressed, "local": exact_local,
                "started": started, "buckets": n_buckets, "any_bad": any_bad, "bad_seen": bad_seen,
                "hooks_left": hooks_left}, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("buckets")
    mp.spawn(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_buckets_equal_the_flat_all_reduce_to_the_bit(results):
    for r in results:
        assert r["buckets"] >= 3
        assert len(r["bucketed"]) == len(r["reference"])
        for got, want in zip(r["bucketed"], r["reference"], strict=True):
            assert (got is None) == (want is None)
            if got is not None:
                assert torch.equal(got, want)
    # the same mean on both ranks; the unused head has no gradient anywhere, rank 1 got rank 0's head half
    for got0, got1 in zip(results[0]["bucketed"], results[1]["bucketed"], strict=True):
        assert (got0 is None) == (got1 is None) and (got0 is None or torch.equal(got0, got1))
    assert results[0]["bucketed"][-1] is None and results[0]["bucketed"][-2] is None
    head = results[0]["bucketed"][-4]           # rank0_head.weight: rank 1 had none, counts as zero there
    assert torch.equal(head, results[0]["local"][-4] / 2) and results[1]["local"][-4] is None


def test_buckets_start_during_the_backward_pass_and_hooks_are_removed(results):
    # after the first step the buckets follow rank 0's arrival order, the unused head last: on rank 0 all
    # but that last bucket start while the backward pass runs (rank 1 has no gradient for rank 0's head,
    # the first to arrive, so its buckets start at the end)
    assert results[0]["started"] == results[0]["buckets"] - 1
    for r in results:
        assert r["hooks_left"] == 0
        assert not r["any_bad"]


def test_a_non_finite_loss_on_one_rank_is_seen_by_every_rank(results):
    assert results[0]["bad_seen"] and results[1]["bad_seen"]


def test_bf16_compression_error_is_within_its_bound(results):
    """|fl(fl(a) + fl(b)) - (a + b)| <= u (|a| + |b|) + u |a + b| elementwise (u = 2^-8, first order),
    so the relative error of the averaged gradient is at most u (||a|| + ||b||) / ||a + b|| + u."""
    a = torch.cat([g.reshape(-1) for g in results[0]["local"] if g is not None][:-2])   # layers both ranks use
    b = torch.cat([g.reshape(-1) for g in results[1]["local"] if g is not None])
    n = b.numel()
    exact = torch.cat([g.reshape(-1) for g in results[0]["reference"] if g is not None])[:n]
    got = torch.cat([g.reshape(-1) for g in results[0]["compressed"] if g is not None])[:n]
    a = a[:n]
    error = float((got - exact).norm() / exact.norm())
    bound = BF16_UNIT * float((a.norm() + b.norm()) / (a + b).norm()) + BF16_UNIT
    print(f"bf16 all-reduce: relative gradient error {error:.2e} (bound {bound:.2e})")
    assert 0 < error <= 1.01 * bound


def test_split_into_buckets_cuts_in_order_once_a_bucket_reaches_its_size():
    params = [torch.nn.Parameter(torch.zeros(n)) for n in (100, 300, 50, 400, 10)]   # 400, 1200, 200, 1600, 40 B
    runs = split_into_buckets(params, 1000 / 2 ** 20)
    assert [[p.numel() for p in run] for run in runs] == [[100, 300], [50, 400], [10]]
    assert split_into_buckets(params, 0) == [params]


def test_many_small_buckets_train_exactly_as_one_flat_all_reduce(tmp_path):
    """2 processes, DDPM: buckets of ~2 KiB (dozens, overlapped) and one flat all-reduce end with the
    same weights, optimiser states, EMA and logs, bit for bit; bf16 compression ends close to them."""
    runs = {}
    for name, extra in (("flat", ["--set", "trainer.grad_bucket_mb=0"]),
                        ("buckets", ["--set", f"trainer.grad_bucket_mb={TINY_MB}"]),
                        ("bf16", ["--set", "trainer.grad_compression=bf16"])):
        runs[name] = tmp_path / name
        torchrun(2, [*DDPM, "--out", str(runs[name]), "--steps", "3", *COMMON, *extra], tmp_path)
    flat, buckets = state(runs["flat"]), state(runs["buckets"])
    for part in ("modules", "optimizers", "ema"):
        _assert_same_tensors(flat[part], buckets[part], part)
    assert (runs["flat"] / "metrics.jsonl").read_text().count("loss") == 3
    compressed = state(runs["bf16"])
    assert_close_states(compressed, flat, atol=1e-3)
    w_c, w_f = compressed["modules"]["denoiser"], flat["modules"]["denoiser"]
    assert any(not torch.equal(w_c[k], w_f[k]) for k in w_f if w_f[k].is_floating_point())

