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
import tomllib
from pathlib import Path

from genmodels.api import choose_base, fit_config, load_training_data
from genmodels.atomic import check_output_path
from genmodels.cli import add_config_flags, config_flags, flag_values, help_requested
from genmodels.config import DataConfig, RunConfig, TrainerConfig
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError, GenmodelsError
from genmodels.models.registry import families as registered
from genmodels.recipes import load_recipe
from genmodels.run import RunDir
from genmodels.sources import source_config

# Options of the command that are not config fields; a config field of the same name gets --model-<name>.
OWN_VALUE_OPTIONS = ("--recipe", "--config", "--out", "--init", "--zoo-root", "--set")
OWN_SWITCHES = ("--resume", "--override-identity", "-h", "--help")
RUN_FLAGS = {"seed": "--seed"}          # top-level RunConfig fields with a flag
DATA_FLAGS = {"name": "--data"}         # [data] fields with a flag (the others: --set data.FIELD=...)


def value_options() -> tuple[str, ...]:
    """The options of the command, the model's apart, that take a value (to find MODEL in argv)."""
    return OWN_VALUE_OPTIONS + tuple(RUN_FLAGS.values()) + tuple(DATA_FLAGS.values()) + config_flags(TrainerConfig)[0]


def command_options() -> set[str]:
    """Every option string of the command, the model's apart (a model field named like one is renamed)."""
    return set(value_options() + OWN_SWITCHES + config_flags(TrainerConfig)[1])


def register(subparsers, argv: list[str] | None = None) -> None:
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
                        "(default: %(default)s)")
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="read the run config from a TOML file first (default: %(default)s)")
    data_flags = add_config_flags(p, DataConfig, dest_prefix="data__", taken=(), rename_prefix="",
                                  fields=DATA_FLAGS, flags=DATA_FLAGS)
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory to create or resume (required)")
    run_flags = add_config_flags(p, RunConfig, dest_prefix="run__", taken=(), rename_prefix="",
                                 fields=RUN_FLAGS, flags=RUN_FLAGS)
    p.add_argument("--init", default=None, metavar="SOURCE",
                   help="fine-tune: start the networks from the weights of SOURCE, a run directory or zoo:NAME "
                        "(same model config; optimisers fresh; recorded as `init` in config.toml; default: "
                        "%(default)s, the family's own initialisation)")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read --init zoo:NAME from the entries in DIR instead of the package's zoo (default: "
                        "%(default)s, the package's)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint, with its config.toml "
                        "(default: %(default)s; without a checkpoint the run starts from step 0)")
    p.add_argument("--override-identity", action="store_true",
                   help="with --resume: allow a seed, data, model or precision other than the run's, recording "
                        "the change in metrics.jsonl (default: %(default)s: such a change is refused)")
    p.add_argument("--set", action="append", default=None, metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set trainer.ema_decay=0.9999 or --set model.lr=2e-4; "
                        "repeatable (default: %(default)s)")
    group = p.add_argument_group("trainer options ([trainer] table of config.toml; also --set trainer.FIELD=...)")
    trainer_flags = add_config_flags(group, TrainerConfig, dest_prefix="trainer__", taken=(), rename_prefix="")
    model_flags: dict[str, str] = {}
    name = (recipe_model(argv) or model_from_argv(argv) or init_model(argv) or config_model(argv)) if argv else None
    if argv and not help_requested(argv):
        check_model_flags(argv, name, MODELS)
    if name in MODELS:
        try:
            config_cls = MODELS[name].load()[1]
        except ImportError as e:
            if not help_requested(argv):
                raise ConfigError(f"model {name!r} cannot be loaded: {e}") from None
        else:
            group = p.add_argument_group(f"{name} options ([model] table of config.toml; also --set model.FIELD=...)")
            model_flags = add_config_flags(group, config_cls, dest_prefix="model__", taken=command_options(),
                                           rename_prefix="model")
    p.set_defaults(func=run, run_flags=run_flags, data_flags=data_flags, trainer_flags=trainer_flags,
                   model_flags=model_flags)


def family_flags(models: dict | None = None) -> dict[str, tuple[set[str], set[str]]]:
    """{family: (its flags that take a value, its switches)} as `register` names them, for every
    family that loads (the pre-parse must know them before it knows the model)."""
    out = {}
    for name, entry in (models if models is not None else registered()).items():
        try:
            config_cls = entry.load()[1]
        except (ImportError, GenmodelsError):
            continue
        values, switches = config_flags(config_cls, command_options(), "model")
        out[name] = (set(values), set(switches))
    return out


def model_from_argv(argv: list[str]) -> str | None:
    """The MODEL positional: the first token that is neither an option nor an option's value. Any
    family's flag counts (`--init RUN --mlp-width 16`: 16 is the flag's value, whatever the model)."""
    known: set[str] | None = None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if token.startswith("-"):
            flag, eq, _ = token.partition("=")
            if eq or flag in command_options() - set(value_options()):
                i += 1
            elif flag in value_options():
                i += 2
            else:
                if known is None:        # the families are loaded only when a flag of theirs appears
                    known = {f for values, _ in family_flags().values() for f in values}
                i += 2 if flag in known else 1
            continue
        return token
    return None


def check_model_flags(argv: list[str], name: str | None, models: dict) -> None:
    """ConfigError for a flag of a family that is not this run's model (or with no model named),
    rather than argparse reading its value as MODEL."""
    flags = [t.partition("=")[0] for t in argv if t.startswith("--")]
    unknown = [f for f in flags if f not in command_options()]
    if not unknown:
        return
    owners = family_flags(models)
    ours = owners.get(name, (set(), set())) if name else (set(), set())
    for flag in unknown:
        if flag in ours[0] | ours[1]:
            continue
        theirs = sorted(f for f, (values, switches) in owners.items() if flag in values | switches)
        if theirs and name:
            raise ConfigError(f"{flag} is an option of {', '.join(theirs)}, not of {name} (this run's model)")
        if theirs:
            raise ConfigError(f"{flag} is an option of {', '.join(theirs)}: name the model (genmodels train "
                              f"{theirs[0]} ...), a recipe (--recipe NAME) or a source to fine-tune (--init SOURCE)")


def config_model(argv: list[str]) -> str | None:
    """The model of the TOML file named by --config FILE in argv (None without one or if it is unreadable;
    the file is read properly, with its errors, once the command runs)."""
    path = _option(argv, "--config")
    if not path:
        return None
    try:
        model = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("model")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return model.get("name") if isinstance(model, dict) and isinstance(model.get("name"), str) else None


def recipe_model(argv: list[str]) -> str | None:
    """The model of the recipe named by --recipe NAME in argv (None without one); an unknown recipe
    is a ConfigError listing the recipes (with --help: None)."""
    for i, token in enumerate(argv):
        name = argv[i + 1] if token == "--recipe" and i + 1 < len(argv) else (
            token.partition("=")[2] if token.startswith("--recipe=") else None)
        if name:
            try:
                return load_recipe(name).config.model_name
            except ConfigError:
                if help_requested(argv):
                    return None
                raise
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
    try:
        return source_config(source, zoo_root=_option(argv, "--zoo-root"))[0].model_name
    except GenmodelsError:
        return None


def build_config(args: argparse.Namespace) -> tuple[RunConfig, RunConfig | None]:
    """The run config from the defaults / --config / the run's config.toml (`api.choose_base`), the
    flags and --set; and, resuming, the run's config.toml as read (once), else None."""
    if args.recipe and args.config:
        raise ConfigError("--recipe and --config both give a whole run config: pass one of them")
    if args.resume:
        if args.recipe:
            raise ConfigError("--recipe cannot be combined with --resume: the run's own config.toml is used")
        if args.config:
            raise ConfigError("--config cannot be combined with --resume: the run's own config.toml is used")
        if args.init:
            raise ConfigError("--init cannot be combined with --resume: a resumed run continues from its checkpoint "
                              "(config.toml records the run's init)")
        if not args.out:
            raise ConfigError("--resume needs --out RUN_DIR")
        check_resumable(args.out)
    base = choose_base(model=args.model, out=args.out, resume=args.resume, config_file=args.config,
                       recipe=args.recipe, init=args.init, zoo_root=args.zoo_root)
    if base is None:
        raise ConfigError("name the model (genmodels train MODEL ...), a recipe (--recipe NAME) or a source to "
                          "fine-tune (--init SOURCE)")
    args.model = args.model or base.model_name
    if base.model_name != args.model:
        raise ConfigError(f"the config is for model {base.model_name!r} but the command names {args.model!r}")
    trainer = flag_values(args, args.trainer_flags)
    if "steps" in trainer:
        trainer.setdefault("epochs", 0)   # --steps on the command line wins over a recipe's or config file's epochs
    top = {**flag_values(args, args.run_flags), "out": args.out, "init": args.init}
    nested = {
        **{k: v for k, v in top.items() if v is not None},
        "data": flag_values(args, args.data_flags),
        "trainer": trainer,
        "model": flag_values(args, args.model_flags),
    }
    config = base.merge(nested, "command line").with_overrides(args.set or [])
    config.validate()
    if not config.out:
        raise ConfigError("out is empty: pass --out RUN_DIR")
    check_output_path(config.out, folder=True)
    if args.override_identity and not args.resume:
        raise ConfigError("--override-identity goes with --resume (a new run has no identity to override)")
    return config, base if args.resume else None


def check_resumable(out: str) -> None:
    """ConfigError unless `out` is a run directory that --resume can continue (it has a config.toml);
    a missing run is never silently started afresh."""
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
    return load_training_data(cfg, seed)


def run(args: argparse.Namespace) -> int:
    config, stored = build_config(args)
    fitted = fit_config(config, resume=args.resume, override_identity=args.override_identity,
                        zoo_root=args.zoo_root, load_data=load_data, stored=stored)
    if not fitted.is_main:
        return 0
    result = fitted.result
    last = ", ".join(f"{k} {v:.4g}" for k, v in result.values.items())
    print(f"trained {config.model_name} on {config.data.name} to step {result.step}"
          f"{' (' + last + ')' if last else ''}; run directory: {result.run_dir}")
    return 0
