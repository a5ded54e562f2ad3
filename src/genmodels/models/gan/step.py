"""The discriminator half of Algorithm 2.1 (steps 2-5), shared by the GAN and InfoGAN families.

    for k steps:                                                   (Algorithm 2.1, step 2)
        z ~ p_z; x ~ p_data, a fresh minibatch each step           (steps 3-4)
        one optimiser step of D on -V(D, G) (+ penalties)          (step 5, seed eq. 2.1)

`fresh_minibatches` yields the k minibatches; `discriminator_step` takes one optimiser step given
a function that scores a real and a generated minibatch (each family knows how to make and score
its samples: labels for a conditional GAN, codes and Q for InfoGAN); `mean_statistics` averages
the logged figures over the k steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from genmodels.models.gan.losses import BCE_KINDS, discriminator_loss

# (real logits (m,), generated logits (m,), {name: (weight, penalty)}): what a family's scorer returns;
# each penalty is added to D's loss times its weight, and logged unweighted under its name
Scores = tuple[torch.Tensor, torch.Tensor, dict[str, tuple[float, torch.Tensor]]]


def fresh_minibatches(batch, ctx, k: int) -> Iterator:
    """The k data minibatches of one iteration (Algorithm 2.1, step 4): the trainer's `batch`
    first, then ctx.next_batch() for each further step, so that no two steps share one."""
    for i in range(k):
        yield batch if i == 0 else ctx.next_batch()


def discriminator_step(ctx, optimizer: torch.optim.Optimizer, nets: Sequence[nn.Module],
                       scores: Callable[[], Scores], kind: str,
                       label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """One discriminator update (Algorithm 2.1, step 5): descend discriminator_loss(real, generated)
    = -V(D, G) (seed eq. 2.1, from logits) plus the weighted penalties from `scores()`, which runs
    under the trainer's autocast. Returns detached scalars: loss_D (without penalties), D_x and
    D_G_z (mean D = sigmoid(logit) for the cross-entropy kinds, the mean critic value for hinge /
    wasserstein), and each penalty, unweighted."""
    with ctx.autocast():
        real_logits, fake_logits, penalties = scores()
        loss_D = discriminator_loss(real_logits, fake_logits, kind, label_smoothing)
        total = loss_D
        for weight, term in penalties.values():
            total = total + weight * term
    ctx.optimize(total, optimizer, list(nets))
    r, f = real_logits.detach().float(), fake_logits.detach().float()
    if kind in BCE_KINDS:
        r, f = torch.sigmoid(r), torch.sigmoid(f)
    stats = {"loss_D": loss_D.detach().float(), "D_x": r.mean(), "D_G_z": f.mean()}
    stats.update({name: term.detach().float() for name, (_, term) in penalties.items()})
    return stats


def mean_statistics(steps: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The per-step figures of `discriminator_step` averaged over the k steps, as 0-dim tensors (the
    trainer reads them back when it logs)."""
    names = list(steps[0])
    means = torch.stack([torch.stack([s[n] for n in names]) for s in steps]).mean(0)
    return dict(zip(names, means.unbind(), strict=True))
