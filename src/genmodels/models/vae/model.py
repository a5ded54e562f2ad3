"""The VAE model: networks, optimiser, training step, sampling and likelihood evaluation.

The maths lives in `elbo.py` (objective, KL, IWAE bound) and `decoders.py` (likelihoods);
the grids in `views.py`. Data arrive in [-1, 1]; with the Bernoulli decoder the model works on
{0, 1} pixels x01 = (x + 1) / 2, re-binarised for every batch ("dynamic binarisation").
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from genmodels.data import dynamic_binarize
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError, DataError
from genmodels.models.base import GenerativeModel
from genmodels.models.optim import adam
from genmodels.models.vae import views as vae_views
from genmodels.models.vae.config import VAEConfig, VAEEvaluateOptions, VAESampleOptions
from genmodels.models.vae.decoders import make_likelihood, quantize
from genmodels.models.vae.elbo import elbo, iwae, iwae_bound
from genmodels.nets.vae_nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

N_VIEW = 16          # training images remembered for the reconstruction / interpolation views
IWAE_ROWS = 20_000   # most decoder rows (examples x importance samples) in one IWAE pass
DEFAULT_K = 5000     # importance samples of evaluate("nll") when none are given (Burda et al.'s test protocol)


class VAE(GenerativeModel):
    """Variational auto-encoder (Kingma & Welling 2013) with a beta-weighted KL (Higgins et al.
    2017), optional KL warm-up (Sonderby et al. 2016), and IWAE training and evaluation (Burda et
    al. 2015)."""

    sample_options = VAESampleOptions
    evaluate_options = VAEEvaluateOptions
    metric_names = ("elbo", "nll")

    def __init__(self, config: VAEConfig, spec: DataSpec, device: torch.device | str = "cpu"):
        config.validate()
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.likelihood = make_likelihood(config.decoder, config.sigma)
        if spec.kind != "image" and config.decoder not in ("gaussian", "gaussian_learned"):
            raise ConfigError(f"model.decoder {config.decoder!r} needs image data; for {spec.kind} data use "
                              f"'gaussian' or 'gaussian_learned'")
        L, P, shape = config.latent_dim, self.likelihood.n_params, spec.shape
        if config.net == "mlp":
            self.encoder = MLPEncoder(shape, config.hidden, L, config.activation)
            self.decoder = MLPDecoder(L, config.hidden, shape, P, config.activation)
        else:
            try:
                self.encoder = ConvEncoder(shape, L, config.channels, config.conv_hidden, config.activation)
                self.decoder = ConvDecoder(L, shape, P, config.channels, config.conv_hidden, config.activation)
            except ValueError as e:
                raise ConfigError(f"model.net 'conv': {e}") from e
        self.encoder.to(self.device)
        self.decoder.to(self.device)
        self.opt = adam([*self.encoder.parameters(), *self.decoder.parameters()], lr=config.lr)
        self.recent: torch.Tensor | None = None   # last training images (data space), for views()

    # ---- data space <-> model space -------------------------------------------------------
    def to_model(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Data x (N, *shape) in [-1, 1] -> what the likelihood models. Bernoulli: {0, 1} pixels
        (a fresh binarisation with `generator` when binarize='dynamic'); discretised: x rounded
        to the 8-bit grid; Gaussian: x itself."""
        cfg = self.config
        if cfg.decoder == "bernoulli":
            if cfg.binarize == "dynamic":
                x = dynamic_binarize(x, generator)
            elif cfg.binarize == "static":
                x = torch.where(x > 0, 1.0, -1.0).to(x.dtype)
            return self.likelihood.to_model(x)
        if cfg.decoder.startswith("discretized"):
            return quantize(x)
        return x

    def kl_weight(self, step: int) -> float:
        """beta, ramped linearly from 0 over the first kl_warmup_steps steps (Sonderby et al. 2016)."""
        w = self.config.kl_warmup_steps
        return self.config.beta * (min(1.0, (step + 1) / w) if w > 0 else 1.0)

    # ---- training ------------------------------------------------------------------------------
    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx) -> dict[str, torch.Tensor | float]:
        """One Adam step on -(E_q[log p(x|z)] - beta_t KL) averaged over the minibatch (objective
        'elbo', E_q over k draws of z), or on -L_k, the IWAE bound with k samples (objective 'iwae';
        logs `iwae` = mean L_k as well). The k draws of an example share one binarisation of x."""
        x = batch[0].to(self.device)
        self.recent = x[:N_VIEW].detach().clone()
        self.encoder.train()
        self.decoder.train()
        x_m = self.to_model(x, ctx.generator)
        if self.config.objective == "iwae":
            with ctx.autocast():
                t = iwae(x_m, self.encoder, self.decoder, self.likelihood, k=self.config.k, generator=ctx.generator)
                loss = -t.bound.float().mean()                            # -L_k (Burda et al. eq. 8)
            ctx.optimize(loss, self.opt, [self.encoder, self.decoder])
            loss = loss.detach()                       # tensors: the trainer reads them when it logs
            return {"loss": loss, "iwae": -loss, "elbo": t.elbo.detach().mean(), "rec": t.rec.detach().mean(),
                    "kl": t.kl.detach().mean()}
        beta_t = self.kl_weight(ctx.step)
        with ctx.autocast():
            terms = elbo(x_m, self.encoder, self.decoder, self.likelihood, beta=beta_t, k=self.config.k,
                         generator=ctx.generator)
            loss = -terms.objective.float().mean()
        ctx.optimize(loss, self.opt, [self.encoder, self.decoder])
        return {"loss": loss.detach(), "elbo": terms.elbo.detach().mean(), "rec": terms.rec.detach().mean(),
                "kl": terms.kl.detach().mean(), "beta": beta_t}

    # ---- sampling / reconstruction ---------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor, *, mean: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """z (N, L) -> images/points in data space: E[x|z] when mean, else a draw from p(x|z)."""
        self.decoder.eval()
        params = self.decoder(z.to(self.device))
        x = self.likelihood.mean(params) if mean else self.likelihood.sample(params, generator)
        x = self.likelihood.to_data(x)
        return x.clamp(-1, 1) if self.spec.kind == "image" else x

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data x (N, *shape) -> (mu, logvar) of q_phi(z|x). Bernoulli models see p = (x+1)/2."""
        self.encoder.eval()
        x = x.to(self.device)
        x_m = self.likelihood.to_model(x) if self.config.decoder == "bernoulli" else self.to_model(x)
        return self.encoder(x_m)

    def sample(self, n: int, options: VAESampleOptions | None = None, *,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples x ~ p_theta(x|z), z ~ N(0, temperature^2 I) (the mean E[x|z] with options.mean).
        Returns (n, *shape) in data space."""
        opts = self.options_of(options)
        z = opts.temperature * torch.randn((n, self.config.latent_dim), generator=generator, device=self.device)
        return self.decode(z, mean=opts.mean, generator=generator)

    # ---- evaluation ---------------------------------------------------------------------------
    def eval_data(self, data: Dataset, limit: int | None = None) -> torch.Tensor:
        """The evaluation data in model space, binarised ONCE with a generator seeded by
        config.eval_seed (the standard protocol for dynamically binarised MNIST)."""
        x = data.x if limit is None else data.x[:limit]
        if tuple(x.shape[1:]) != tuple(self.spec.shape):
            raise DataError(f"{data.name or 'data'}: examples of shape {tuple(x.shape[1:])}, "
                            f"the model was trained on {tuple(self.spec.shape)}")
        g = torch.Generator(device="cpu").manual_seed(self.config.eval_seed)
        return self.to_model(x.cpu(), g)

    @torch.no_grad()
    def evaluate(self, metric: str, data: Dataset, options: VAEEvaluateOptions | None = None, *,
                 n: int | None = None, batch_size: int | None = None, k: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False) -> dict[str, float]:
        """'elbo': the one-sample ELBO (nats, and -ELBO in bits/dim); 'nll': -L_K, the IWAE
        bound with K = k importance samples (None: DEFAULT_K) drawn options.chunk at a time (nats and
        bits/dim). Averages over data.x (the first `n` examples when given). batch_size is the number
        of examples per pass (for 'nll' capped so that examples x chunk <= IWAE_ROWS).
        Bits/dim = nats / (D ln 2); exact for the discrete decoders (Bernoulli, discretised),
        a differential density of x in [-1, 1] for the Gaussian ones."""
        self.check_metric(metric)
        chunk = self.options_of(options, "evaluate").chunk
        k = DEFAULT_K if k is None else k
        if k < 1 or chunk < 1:
            raise ConfigError(f"evaluate: k and chunk must be >= 1, got k={k}, chunk={chunk}")
        self.encoder.eval()
        self.decoder.eval()
        x_all = self.eval_data(data, n)
        if generator is None:
            generator = torch.Generator(device=self.device).manual_seed(self.config.eval_seed + 1)
        if metric == "elbo":
            batch_size = batch_size or 256
        else:   # at most IWAE_ROWS (examples x samples) per decoder pass, whatever batch_size asks
            batch_size = min(batch_size or IWAE_ROWS, max(1, IWAE_ROWS // min(chunk, k)))
        starts = range(0, len(x_all), batch_size)
        if progress:
            starts = tqdm(starts, desc=f"vae {metric}", unit="batch")
        sums = {"elbo": 0.0, "rec": 0.0, "kl": 0.0, "bound": 0.0}
        for i in starts:
            x = x_all[i:i + batch_size].to(self.device)
            if metric == "elbo":
                t = elbo(x, self.encoder, self.decoder, self.likelihood, generator=generator)
                sums["elbo"] += t.elbo.sum().item()
                sums["rec"] += t.rec.sum().item()
                sums["kl"] += t.kl.sum().item()
            else:
                sums["bound"] += iwae_bound(x, self.encoder, self.decoder, self.likelihood,
                                            K=k, chunk=chunk, generator=generator).sum().item()
        n, nats_to_bpd = len(x_all), 1.0 / (self.spec.dim * math.log(2))
        if metric == "elbo":
            e = sums["elbo"] / n
            return {"elbo": e, "nelbo_bits_per_dim": -e * nats_to_bpd, "rec": sums["rec"] / n,
                    "kl": sums["kl"] / n, "n": float(n)}
        nll = -sums["bound"] / n
        return {"nll": nll, "nll_bits_per_dim": nll * nats_to_bpd, "k": float(k), "n": float(n)}

    # ---- pictures -----------------------------------------------------------------------------
    def views(self, generator: torch.Generator | None = None, data: Dataset | None = None) -> dict[str, torch.Tensor]:
        """Grids (1, C, H', W') in [-1, 1]: samples; reconstructions and interpolations of the
        first images of `data` (else of the last training batch); the latent map when L = 2."""
        if self.spec.kind != "image":
            return {}
        return vae_views.all_views(self, generator, data.x[:N_VIEW] if data is not None else self.recent)

    # ---- the contract's accessors ------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        """The encoder q_phi(z|x) and the decoder p_theta(x|z)."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam over both networks."""
        return {"adam": self.opt}
