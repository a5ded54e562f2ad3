"""`genmodels train MODEL --data NAME_OR_PATH --out RUN_DIR [...]`: train a model into a run directory.

Values are taken, lowest precedence first, from the defaults, --recipe NAME (a shipped run config,
see `genmodels recipes`; MODEL may then be left out) or --config FILE.toml (or, with --resume, the
run's own config.toml), the flags below, the model's flags, and --set overrides.

Fine-tuning: --init SOURCE (a run directory or zoo:NAME, see `genmodels zoo`) starts the networks
from the source's weights (its EMA weights where it kept them) instead of a fresh initialisation,
with fresh optimisers. The model config must be the source's; without MODEL, --recipe or --config
the run starts from the source's own run config (machine settings reset: device, threads,
precision). config.toml records `init`, so --resume continues from the checkpoint, never re-initialises.

Data-parallel training: `torchrun --nproc_per_node N -m genmodels train MODEL ...` (gloo on CPU,
NCCL on GPUs; --batch-size is the global batch, split over the N processes; only rank 0 writes
RUN_DIR). Multi-node runs use torchrun's usual --nnodes/--node-rank/--master-addr flags.
"""

from __future__ import annotations

import argparse

from genmodels.atomic import check_output_path
from genmodels.cli import add_config_flags, flag_values, help_requested
from genmodels.config import DataConfig, RunConfig, load_toml
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError

# Options of the command itself; a model field with one of these names gets --model-<name>.
VALUE_OPTIONS = ("--data", "--out", "--steps", "--epochs", "--batch-size", "--seed", "--config", "--set", "--device",
                 "--precision", "--threads", "--recipe", "--init", "--zoo-root")
FLAG_OPTIONS = ("--resume", "--override-identity", "--progress", "--no-progress", "--compile", "--no-compile", "--channels-last",
                "--no-channels-last", "-h", "--help")


def register(subparsers, argv: list[str] | None = None) -> None:
    from genmodels.models.registry import families as registered

    MODELS = registered()       # built-in, registered and installed (entry point) families
    families = ", ".join(f"{name} ({entry.description})" for name, entry in sorted(MODELS.items()))
    p = subparsers.add_parser(
        "train", help="train a model into a run directory",
        description=__doc__.strip().splitlines()[0] + "\n\n" + "\n".join(__doc__.strip().splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Each model has its own options: run `genmodels train MODEL --help` to list them.")
    p.add_argument("model", metavar="MODEL", nargs="?", default=None, choices=sorted(MODELS),
                   help=f"model family: {families} (optional with --recipe)")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="start from a shipped recipe (`genmodels recipes` lists them); flags override it "
                        "(default: none)")
    p.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                   help="built-in data set name or file/folder path (data.name; required unless set by --config "
                        "or --resume)")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory to create or resume (required)")
    p.add_argument("--steps", default=None, metavar="N", help="optimisation steps (trainer.steps; default: 10000; "
                   "given alone, it also overrides an epochs count from --recipe or --config)")
    p.add_argument("--epochs", default=None, metavar="E",
                   help="passes over the data instead of --steps (trainer.epochs; default: 0 = use --steps)")
    p.add_argument("--batch-size", default=None, metavar="B", help="examples per minibatch (trainer.batch_size; "
                                                                    "default: 64)")
    p.add_argument("--seed", default=None, metavar="S", help="run seed for every random stream (default: 0)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="auto, cpu, cuda, cuda:N or mps (trainer.device; default: auto)")
    p.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16", "fp16"),
                   help="autocast precision (trainer.precision; default: auto = bf16 where the CPU has "
                        "AVX512-BF16/AMX or the GPU supports bf16, else fp32): bf16 on CPU or CUDA, fp16 on CUDA "
                        "with grad scaling")
    p.add_argument("--threads", default=None, metavar="N",
                   help="CPU threads of this process (trainer.threads; default: 0 = one per core, shared out "
                        "among torchrun's processes; pass 1 when another job is running)")
    p.add_argument("--compile", default=None, action=argparse.BooleanOptionalAction,
                   help="torch.compile each network (trainer.compile; default: false)")
    p.add_argument("--channels-last", default=None, action=argparse.BooleanOptionalAction,
                   help="channels-last memory format for conv nets (trainer.channels_last; default: false)")
    p.add_argument("--progress", default=None, action=argparse.BooleanOptionalAction,
                   help="show a tqdm progress bar (trainer.progress; default: true)")
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="read the run config from a TOML file first (default: none)")
    p.add_argument("--init", default=None, metavar="SOURCE",
                   help="fine-tune: start the networks from the weights of SOURCE, a run directory or zoo:NAME "
                        "(same model config; optimisers fresh; recorded as `init` in config.toml; default: none)")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read --init zoo:NAME from the entries in DIR instead of the package's zoo (default: the "
                        "package's)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint, with its config.toml "
                        "(default: off; without a checkpoint the run starts from step 0)")
    p.add_argument("--override-identity", action="store_true",
                   help="with --resume: allow a seed, data, model or precision other than the run's, recording "
                        "the change in metrics.jsonl (default: off; such a change is refused)")
    p.add_argument("--set", action="append", default=None, metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set trainer.ema_decay=0.9999 or --set model.lr=2e-4; "
                        "repeatable (default: none)")
    mapping: dict[str, str] = {}
    name = (recipe_model(argv) or model_from_argv(argv) or init_model(argv)) if argv else None
    if name in MODELS:
        try:
            config_cls = MODELS[name].load()[1]
        except ImportError as e:
            if not help_requested(argv):
                raise ConfigError(f"model {name!r} cannot be loaded: {e}") from None
        else:
            group = p.add_argument_group(f"{name} options ([model] table of config.toml; also --set model.FIELD=...)")
            mapping = add_config_flags(group, config_cls, dest_prefix="model__",
                                       taken=set(VALUE_OPTIONS + FLAG_OPTIONS), rename_prefix="model")
    p.set_defaults(func=run, model_flags=mapping)


def model_from_argv(argv: list[str]) -> str | None:
    """The MODEL positional: the first token that is neither an option nor an option's value."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if token.startswith("-"):
            i += 2 if token in VALUE_OPTIONS else 1
            continue
        return token
    return None


def recipe_model(argv: list[str]) -> str | None:
    """The model of the recipe named by --recipe NAME in argv (None without one or if it is unknown)."""
    for i, token in enumerate(argv):
        name = argv[i + 1] if token == "--recipe" and i + 1 < len(argv) else (
            token.partition("=")[2] if token.startswith("--recipe=") else None)
        if name:
            from genmodels.recipes import load_recipe

            try:
                return load_recipe(name).config.model_name
            except ConfigError:
                return None
    return None


def _option(argv: list[str], flag: str) -> str | None:
    """The value of `flag VALUE` or `flag=VALUE` in argv, else None."""
    for i, token in enumerate(argv):
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(flag + "="):
            return token.partition("=")[2]
    return None


def init_model(argv: list[str]) -> str | None:
    """The model of the source named by --init SOURCE in argv (None without one or if it cannot be read)."""
    source = _option(argv, "--init")
    if not source:
        return None
    from genmodels.errors import GenmodelsError
    from genmodels.sources import source_config

    try:
        return source_config(source, zoo_root=_option(argv, "--zoo-root"))[0].model_name
    except GenmodelsError:
        return None


def build_config(args: argparse.Namespace) -> RunConfig:
    """The run config from the defaults / --config / the run's config.toml, the flags and --set."""
    from genmodels.run import RunDir

    if args.recipe and args.config:
        raise ConfigError("--recipe and --config both give a whole run config: pass one of them")
    if args.resume:
        if args.recipe:
            raise ConfigError("--recipe cannot be combined with --resume: the run's own config.toml is used")
        if args.config:
            raise ConfigError("--config cannot be combined with --resume: the run's own config.toml is used")
        if getattr(args, "init", None):
            raise ConfigError("--init cannot be combined with --resume: a resumed run continues from its checkpoint "
                              "(config.toml records the run's init)")
        if not args.out:
            raise ConfigError("--resume needs --out RUN_DIR")
        check_resumable(args.out)
    run_config = RunDir(args.out).config if args.out else None
    if args.resume and run_config is not None and run_config.is_file():
        base, _ = load_toml(run_config)
    elif args.config:
        base, _ = load_toml(args.config)
    elif args.recipe:
        from genmodels.recipes import load_recipe

        base = load_recipe(args.recipe).config
    elif args.model:
        base = RunConfig.default(args.model)
    elif getattr(args, "init", None):
        from genmodels.api import init_base

        base = init_base(args.init, getattr(args, "zoo_root", None))
    else:
        raise ConfigError("name the model (genmodels train MODEL ...), a recipe (--recipe NAME) or a source to "
                          "fine-tune (--init SOURCE)")
    args.model = args.model or base.model_name
    if base.model_name != args.model:
        raise ConfigError(f"the config is for model {base.model_name!r} but the command names {args.model!r}")
    epochs = args.epochs
    if args.steps is not None and epochs is None:
        epochs = 0   # --steps on the command line wins over epochs set by a recipe or a config file
    trainer = {"steps": args.steps, "epochs": epochs, "batch_size": args.batch_size, "device": args.device,
               "progress": args.progress, "precision": args.precision, "threads": args.threads, "compile": args.compile,
               "channels_last": args.channels_last}
    nested = {
        "seed": args.seed,
        "out": args.out,
        "init": getattr(args, "init", None),
        "data": {"name": args.data},
        "trainer": trainer,
        "model": flag_values(args, args.model_flags),
    }
    nested = {k: ({kk: vv for kk, vv in v.items() if vv is not None} if isinstance(v, dict) else v)
              for k, v in nested.items() if v is not None}
    config = base.merge(nested, "command line").with_overrides(args.set or [])
    config.validate()
    if not config.out:
        raise ConfigError("out is empty: pass --out RUN_DIR")
    check_output_path(config.out, folder=True)
    if getattr(args, "override_identity", False) and not args.resume:
        raise ConfigError("--override-identity goes with --resume (a new run has no identity to override)")
    return config


def check_resumable(out: str) -> None:
    """ConfigError unless `out` is a run directory that --resume can continue (it has a config.toml);
    a missing run is never silently started afresh."""
    from genmodels.run import RunDir

    run = RunDir(out)
    if not run.path.exists():
        raise ConfigError(f"--resume: {run.path} does not exist, so there is no run to resume (drop --resume to "
                          f"start a new run there)")
    if not run.path.is_dir():
        raise ConfigError(f"--resume: {run.path} is a file, not a run directory")
    if not run.config.is_file():
        raise ConfigError(f"--resume: {run.path} has no config.toml, so it holds no run to resume (its config is "
                          f"missing; drop --resume to start a new run there)")


def load_data(cfg: DataConfig, seed: int) -> Dataset:
    """The training split named by the [data] table (2-D toys are drawn from the run seed)."""
    from genmodels.api import load_training_data

    return load_training_data(cfg, seed)


def run(args: argparse.Namespace) -> int:
    from genmodels.api import fit_config

    config = build_config(args)
    fitted = fit_config(config, resume=args.resume, override_identity=getattr(args, "override_identity", False),
                        zoo_root=getattr(args, "zoo_root", None), load_data=load_data)
    if not fitted.is_main:
        return 0
    result = fitted.result
    last = ", ".join(f"{k} {v:.4g}" for k, v in result.values.items())
    print(f"trained {config.model_name} on {config.data.name} to step {result.step}"
          f"{' (' + last + ')' if last else ''}; run directory: {result.run_dir}")
    return 0
