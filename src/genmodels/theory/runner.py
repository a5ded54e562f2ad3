"""Run every check of the seed's claims in the order of the notes: `run_all() -> list[Check]`."""

from __future__ import annotations

import os
from collections.abc import Callable

from genmodels.theory import diffusion_claims, feller, flow_claims, gan_claims, markov
from genmodels.theory.check import Check

LEARNED_V = 0.5   # the learned-variance checks: Sigma_t = sqrt(beta_t beta~_t) (Nichol & Dhariwal eq. 15)


def checks(plots_dir: str | os.PathLike | None = None, seed: int = 0) -> list[tuple[str, Callable[[], object]]]:
    """(name, thunk) for each group of checks; a thunk returns a Check or a list of them."""
    p = None if plots_dir is None else str(plots_dir)
    return [
        ("remark1", lambda: gan_claims.check_remark1(seed=seed)),
        ("prop2", lambda: gan_claims.check_prop2_trained(seed=seed, plots_dir=p)),
        ("prop2-argmax", lambda: gan_claims.check_prop2_argmax(seed=seed)),
        ("theorem3", lambda: gan_claims.check_theorem3(plots_dir=p)),
        ("prop4", lambda: gan_claims.check_prop4(plots_dir=p)),
        ("theorem5", lambda: feller.check_theorem5(plots_dir=p)),
        ("prop6", lambda: markov.check_prop6(seed=seed)),
        ("theorem8-bound", lambda: diffusion_claims.check_theorem8_bound(seed=seed)),
        ("theorem8-loglik", lambda: diffusion_claims.check_theorem8_loglik(seed=seed, plots_dir=p)),
        ("theorem8-learned", lambda: [diffusion_claims.check_theorem8_bound(seed=seed, v=LEARNED_V),
                                      diffusion_claims.check_theorem8_loglik(seed=seed, v=LEARNED_V)]),
        ("remark7", lambda: diffusion_claims.check_remark7(seed=seed, plots_dir=p)),
        ("flow-gaussian", lambda: [flow_claims.check_gaussian_marginals(seed=seed),
                                   flow_claims.check_gaussian_likelihood(seed=seed),
                                   flow_claims.check_trained_field(seed=seed)]),
        ("flow-mixture", lambda: flow_claims.check_mixture_transport(seed=seed)),
    ]


def run_all(plots_dir: str | os.PathLike | None = None, seed: int = 0,
            on_result: Callable[[Check], None] | None = None) -> list[Check]:
    """Run every check; figures go to `plots_dir` (none when None). `seed` seeds the explicit
    generators of the randomised checks. `on_result(check)` is called as each line is ready."""
    results: list[Check] = []
    for _, thunk in checks(plots_dir, seed):
        out = thunk()
        for c in out if isinstance(out, list) else [out]:
            results.append(c)
            if on_result is not None:
                on_result(c)
    return results
