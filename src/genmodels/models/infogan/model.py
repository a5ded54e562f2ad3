"""The InfoGAN model (Chen et al. 2016; docs/infogan.md): a GAN whose generator G(z, c) also
maximises the variational bound L_I of the mutual information between its codes c and its
images, with an auxiliary distribution Q(c | x) that shares D's body.

    min_{G,Q} max_D  V(D, G) - lambda L_I(G, Q)                      (Chen et al. eq. 6)

Each iteration, as in Algorithm 2.1 of the seed and the authors' code:
    for k steps: D and Q descend  -V(D, G) - lambda L_I   on a data minibatch and fresh (z, c),
                 G's samples held fixed (the GAN family's own `discriminator_step` and `discriminator_loss`)
    G descends  generator_loss(D(G(z, c))) - lambda L_I   on fresh (z, c)
so the L_I term reaches Q's parameters (its head and D's shared body) in the first step and G's
parameters, through x = G(z, c), in the second. Q never sees a detached G(z, c) in G's step.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque

import torch
from torch import nn

from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError, DataError
from genmodels.metrics.clustering import code_accuracy
from genmodels.models.base import GenerativeModel, eval_mode
from genmodels.models.gan.config import BETAS
from genmodels.models.gan.losses import generator_loss
from genmodels.models.gan.model import sample_z
from genmodels.models.gan.step import discriminator_step, fresh_minibatches, mean_statistics
from genmodels.models.infogan.codes import Codes, sample_codes
from genmodels.models.infogan.config import InfoGANConfig, InfoGANEvaluateOptions, InfoGANSampleOptions
from genmodels.models.infogan.mi import QOutput, info_loss, info_terms, q_output_dim, split_q
from genmodels.models.infogan.traversal import grid_shape, traversal_codes
from genmodels.models.optim import adam
from genmodels.nets.dcgan import SIZES
from genmodels.nets.gan_mlp import MLPGenerator
from genmodels.nets.infogan_nets import InfoGANBody, InfoGANGenerator, MLPBody, QHead, SharedDiscriminator
from genmodels.viz import tile

ACCURACY_WINDOW = 2000   # recent real training examples behind the logged code accuracy


def build_networks(config: InfoGANConfig, spec: DataSpec) -> tuple[nn.Module, nn.Module, str]:
    """(G, D's body, arch): the paper's conv nets for square 28x28 / 32x32 images, else MLPs."""
    square = spec.kind == "image" and len(spec.shape) == 3 and spec.shape[1] == spec.shape[2] in SIZES
    arch = config.arch if config.arch != "auto" else ("conv" if square else "mlp")
    if arch == "conv" and not square:
        raise ConfigError(f"model.arch='conv' needs 28x28 or 32x32 images, but the data has {spec.kind} examples "
                          f"of shape {tuple(spec.shape)}; use arch='mlp' or 'auto'")
    in_dim = config.z_dim + config.code_spec().input_dim
    if arch == "conv":
        channels, size = spec.shape[0], spec.shape[1]
        return (InfoGANGenerator(in_dim, channels, size, config.width, config.hidden),
                InfoGANBody(channels, size, config.width, config.hidden), arch)
    hidden = [config.mlp_width] * config.mlp_depth
    G = MLPGenerator(in_dim, spec.shape, hidden, output="identity" if spec.kind == "points" else "tanh")
    return G, MLPBody(spec.shape, hidden), arch


@contextlib.contextmanager
def frozen(*nets: nn.Module):
    """Inside the block the nets' parameters need no gradient (the generator step only needs the
    gradient through D and Q with respect to their input, not their weights' gradients)."""
    params = [p for net in nets for p in net.parameters()]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class InfoGAN(GenerativeModel):
    """Generator G(z, c), discriminator D = head(body(x)) and Q = Q-head(body(x)).

    config: InfoGANConfig; spec: the data's DataSpec; device: where the networks live.
    """

    sample_options = InfoGANSampleOptions
    evaluate_options = InfoGANEvaluateOptions
    metric_names: tuple[str, ...] = ("code-accuracy",)

    def __init__(self, config: InfoGANConfig, spec: DataSpec, device: torch.device | str = "cpu"):
        config.validate()
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.codes = config.code_spec()
        G, body, self.arch = build_networks(config, spec)
        self.G = G.to(self.device)
        self.D = SharedDiscriminator(body).to(self.device)
        self.Q = QHead(body.out_dim, q_output_dim(self.codes, config.learn_var), config.q_hidden).to(self.device)
        betas = BETAS[config.betas]
        self.opt_G = adam(self.G.parameters(), lr=config.lr_g, betas=betas)
        # D and Q share the body: one optimiser over D (body + head) and Q's head, as in the authors' code
        self.opt_D = adam([*self.D.parameters(), *self.Q.parameters()], lr=config.lr_d, betas=betas)
        self._recent: deque[tuple[torch.Tensor, torch.Tensor]] = deque()   # (codes, labels) on real data
        self._recent_n = 0
        self._labelled = spec.num_classes > 0

    # ----------------------------------------------------------------- the contract
    def modules(self) -> dict[str, nn.Module]:
        """The generator G, the discriminator D (body + head) and Q's head."""
        return {"G": self.G, "D": self.D, "Q": self.Q}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """G's, and one over D and Q (they share D's body)."""
        return {"G": self.opt_G, "D": self.opt_D}

    def ema_modules(self) -> dict[str, nn.Module]:
        """G, when model.ema asks for an EMA of the generator (what then samples)."""
        return {"G": self.G} if self.config.ema else {}

    # ----------------------------------------------------------------- pieces
    def noise(self, m: int, generator: torch.Generator | None) -> torch.Tensor:
        """m draws of the incompressible noise z: (m, z_dim)."""
        return sample_z(m, self.config.z_dim, self.config.noise, generator, self.device)

    def generate(self, z: torch.Tensor, c: Codes) -> torch.Tensor:
        """G(z, c): z (m, z_dim) and m codes -> images (m, C, H, W) or points (m, D)."""
        return self.G(torch.cat([z, c.to_input(self.codes)], dim=1))

    def q_of(self, h: torch.Tensor) -> QOutput:
        """Q(c | x)'s parameters from D's body features h (m, body width)."""
        return split_q(self.Q(h), self.codes, self.config.learn_var)

    def fake_terms(self, m: int, generator: torch.Generator | None, *, grad_G: bool = True):
        """Draw (z, c), make x = G(z, c), and score it: (D's logits (m,), {code: L_I}, c).
        With grad_G the graph reaches G's parameters (generator step); without, G runs under no_grad."""
        z = self.noise(m, generator)
        c = sample_codes(self.codes, m, generator, self.device)
        with torch.set_grad_enabled(grad_G and torch.is_grad_enabled()):
            x_fake = self.generate(z, c)
        fake_logits, h = self.D(x_fake)
        return fake_logits, info_terms(self.q_of(h), c, self.codes), c

    def info_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """-sum lambda_i L_I_i with this model's lambdas (Chen et al. eq. 6)."""
        return info_loss(terms, self.config.lambda_cat, self.config.lambda_cont)

    # ----------------------------------------------------------------- training
    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx) -> dict[str, torch.Tensor | float]:
        """k discriminator/Q steps (each on a fresh data minibatch and fresh (z, c)), then one generator
        step. Logs loss_D, loss_G, D_x, D_G_z (as for the GAN), L_I and L_I_<code> (nats, from the
        generator step), H_<code> = log K for each categorical code (the most its L_I can reach),
        and code_acc: the first categorical code's accuracy on recent labelled training images
        under the best one-to-one matching of codes to classes (only at the steps whose values the
        trainer reads, `ctx.reads`: the matching runs on the host)."""
        cfg = self.config
        for net in (self.G, self.D, self.Q):
            net.train()
        d_steps = []
        for x, y in fresh_minibatches(batch, ctx, cfg.k):                   # Algorithm 2.1 steps 2 and 4
            x = x.to(self.device, non_blocking=True)
            m = x.shape[0]

            def scores(x=x, y=y, m=m):
                real_logits, h_real = self.D(x)
                fake_logits, terms, _ = self.fake_terms(m, ctx.generator, grad_G=False)   # step 3
                self._remember_codes(h_real, y)
                return real_logits, fake_logits, {"info": (1.0, self.info_loss(terms))}  # Chen et al. eq. 6 (Q)

            # step 5 with the GAN family's own discriminator step: D and Q descend -V(D, G) - lambda L_I
            d_steps.append(discriminator_step(ctx, self.opt_D, [self.D, self.Q], scores, cfg.loss))

        with ctx.autocast(), frozen(self.D, self.Q):                         # step 7: fresh (z, c)
            fake_logits, terms, _ = self.fake_terms(m, ctx.generator, grad_G=True)
            loss_G = generator_loss(fake_logits, cfg.loss)                   # step 8 (seed Remark 1 / eq. 2.3)
            loss_GI = loss_G + self.info_loss(terms)                         # Chen et al. eq. 6 (G)
            ctx.optimize(loss_GI, self.opt_G, [self.G])

        d = mean_statistics(d_steps)
        out = {"loss_D": d["loss_D"], "loss_G": loss_G.detach().float(), "D_x": d["D_x"], "D_G_z": d["D_G_z"],
               "L_I": sum(t.detach() for t in terms.values())}
        H = self.codes.entropy()
        for name, L_I in terms.items():
            out[f"L_I_{name}"] = L_I.detach()
            if name.startswith("cat"):
                out[f"H_{name}"] = H[name]
        if ctx.reads and self._recent_n:
            pred, y = self._recent_arrays()
            labelled = y >= 0
            if bool(labelled.any()):
                out["code_acc"] = code_accuracy(pred[labelled], y[labelled])["accuracy"]
        return out

    @torch.no_grad()
    def _remember_codes(self, h_real: torch.Tensor, y: torch.Tensor) -> None:
        """Keep Q's first categorical code and the label of the last ACCURACY_WINDOW real images, on
        the device (unlabelled ones, y = -1, are left out when the accuracy is computed)."""
        if not self.codes.categorical or y is None or not self._labelled:
            return
        y = y.reshape(-1)
        if len(y) != len(h_real):
            return
        pred = self.q_of(h_real.detach().float()).cat_logits[0].argmax(1)   # float: h may be bf16 (autocast)
        y = y.to(pred.device, non_blocking=True)
        self._recent.append((pred, y))
        self._recent_n += len(y)
        while self._recent_n - len(self._recent[0][1]) >= ACCURACY_WINDOW:
            self._recent_n -= len(self._recent.popleft()[1])

    def _recent_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([p for p, _ in self._recent]), torch.cat([t for _, t in self._recent])

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, options: InfoGANSampleOptions | None = None, *,
               generator: torch.Generator | None = None, batch_size: int = 1000) -> torch.Tensor:
        """n samples G(z, c) with (z, c) from their priors: images (n, C, H, W) in [-1, 1] or points (n, D),
        drawn batch_size at a time.

        options.code_value >= 0 fixes the first categorical code. With options.traverse, the n images
        are latent traversal grids in row-major order (see `traversal`), one fresh z per grid; tile
        them with traverse_steps images per row.
        """
        opts = self.options_of(options)
        code_value = opts.code_value
        if n < 0:
            raise ConfigError(f"number of samples must be >= 0, got {n}")
        if opts.traverse:
            grids, per_grid = [], math.prod(grid_shape(self.codes, opts.traverse_cat, opts.traverse_steps))
            for _ in range(math.ceil(n / per_grid)):
                grids.append(self.traversal(generator, cont_index=opts.traverse_code, cat_index=opts.traverse_cat,
                                            steps=opts.traverse_steps, limit=opts.traverse_limit))
            return torch.cat(grids)[:n] if grids else torch.empty(0, *self.spec.shape, device=self.device)
        if code_value >= 0 and (not self.codes.categorical or code_value >= self.codes.categorical[0]):
            raise ConfigError(f"code_value={code_value}: the first categorical code takes values "
                              f"0..{self.codes.categorical[0] - 1}" if self.codes.categorical
                              else f"code_value={code_value}: this model has no categorical code")
        out = []
        with eval_mode(self.G):
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                z = self.noise(m, generator)
                c = sample_codes(self.codes, m, generator, self.device)
                if code_value >= 0:
                    c.cat[0] = torch.full_like(c.cat[0], code_value)
                out.append(self.generate(z, c).float())
        return torch.cat(out) if out else torch.empty(0, *self.spec.shape, device=self.device)

    def sample_nrow(self, options: InfoGANSampleOptions | None = None) -> int | None:
        """Images per row when tiling `sample(n, options)`: the traversal grid's columns with
        options.traverse, else None (any layout)."""
        opts = self.options_of(options)
        return grid_shape(self.codes, opts.traverse_cat, opts.traverse_steps)[1] if opts.traverse else None

    @torch.no_grad()
    def traversal(self, generator: torch.Generator | None = None, *, cont_index: int = 0, cat_index: int = 0,
                  steps: int = 10, limit: float = 2.0) -> torch.Tensor:
        """One traversal grid (Chen et al. Figure 2), row-major (rows * cols, C, H, W): rows = values of
        categorical code `cat_index`, columns = continuous code `cont_index` from -limit to limit; one z
        and the other codes drawn once for the whole grid (other continuous codes at 0)."""
        base = sample_codes(self.codes, 1, generator, self.device)
        c = traversal_codes(self.codes, base, cont_index=cont_index, cat_index=cat_index, steps=steps, limit=limit)
        z = self.noise(1, generator).expand(len(c), -1)
        with eval_mode(self.G):
            return self.generate(z, c).float()

    @torch.no_grad()
    def views(self, generator: torch.Generator | None = None, data: Dataset | None = None,
              steps: int = 10) -> dict[str, torch.Tensor]:
        """Traversal grids for the run report, {"traversal_cont<j>": (1, C, H', W') in [-1, 1]} for
        each continuous code j (or {"traversal_cat": ...} without continuous codes), drawn from the
        model alone (`data` is not used); images only."""
        if self.spec.kind != "image":
            return {}
        names = [f"traversal_cont{j}" for j in range(self.codes.continuous)] or ["traversal_cat"]
        cols = steps if self.codes.continuous else 1
        return {name: tile(self.traversal(generator, cont_index=j, steps=steps), nrow=cols)
                for j, name in enumerate(names)}

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor, code: int = 0, batch_size: int = 500) -> torch.Tensor:
        """argmax_c Q(c_code | x) for real examples x (N, *shape): (N,) int64 on the CPU."""
        if not 0 <= code < len(self.codes.categorical):
            raise ConfigError(f"code={code}: this model has {len(self.codes.categorical)} categorical code(s)")
        out = []
        with eval_mode(self.D, self.Q):
            for start in range(0, len(x), batch_size):
                _, h = self.D(x[start:start + batch_size].to(self.device))
                out.append(self.q_of(h).cat_logits[code].argmax(1).cpu())
        return torch.cat(out)

    def evaluate(self, metric: str, data: Dataset, options: InfoGANEvaluateOptions | None = None, *,
                 n: int | None = None, batch_size: int | None = None, k: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False) -> dict[str, float]:
        """'code-accuracy': classify data.x (the first n examples when given) with Q's categorical code
        options.code and score it against data.y under the best one-to-one matching of codes to classes
        (Hungarian matching). Deterministic: k, generator and progress do not apply."""
        self.check_metric(metric)
        code = self.options_of(options, "evaluate").code
        x, y = data.x[:n], None if data.y is None else data.y[:n]    # n None: every example
        if y is None or (y < 0).any():
            raise DataError(f"{data.name or 'data'}: code-accuracy needs labels for every example")
        if tuple(x.shape[1:]) != tuple(self.spec.shape):
            raise DataError(f"{data.name or 'data'}: examples of shape {tuple(x.shape[1:])}, "
                            f"the model was trained on {tuple(self.spec.shape)}")
        pred = self.predict_codes(x, code, batch_size or 500)
        result = code_accuracy(pred, y)
        return {"code-accuracy": result["accuracy"], "purity": result["purity"], "n": float(result["n"]),
                "codes_used": float(len(result["counts"]))}
