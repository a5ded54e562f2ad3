"""The sampler registry (`diffusion.samplers.SAMPLERS`) and the one sample-option parser.

The registry agrees with the sampler functions' signatures, the DDPM's sample options take their
names, choices, defaults and help from it, and `genmodels sample` / `evaluate` / `compare` / `zoo
export` read sampling options through one parser: typed flags, the KEY=VALUE alias, the errors,
and a zoo entry's defaults under the flags."""

from __future__ import annotations

import inspect

import pytest
import torch

from genmodels.cli import build_parser
from genmodels.cli.sample_flags import given, source_from_argv
from genmodels.config import RunConfig
from genmodels.config_fields import field_choices
from genmodels.data.dataset import DataSpec
from genmodels.diffusion.samplers import SAMPLERS, SPACINGS, describe_default_steps, get_spec, timestep_sequence
from genmodels.errors import ConfigError
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions
from genmodels.run import LoadedRun, RunDir
from genmodels.run.sample_options import CARD_LAYER, USER_LAYER, build_sample_options, parse_pairs, run_sample_options

pytestmark = pytest.mark.usefixtures("one_thread")

COMMON = {"steps", "generator", "clip_x0", "callback", "spacing"}   # the shared keyword options
T = 60                                                                # above every registry default


def keyword_defaults(fn) -> dict:
    """{keyword-only parameter: default} of a sampler function (through its no_grad wrapper)."""
    sig = inspect.signature(inspect.unwrap(fn))
    return {name: p.default for name, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_registry_agrees_with_the_function_signature(name):
    spec = SAMPLERS[name]
    defaults = keyword_defaults(spec.fn)
    assert COMMON <= set(defaults), name
    assert set(defaults) - COMMON == set(spec.extra), name              # the extra options, named
    assert defaults["spacing"] == spec.spacing, name
    # the function's own steps default is the registry's, or all T where genmodels picks fewer (ddim: 50)
    assert defaults["steps"] in (spec.steps, None), name
    if defaults["steps"] is not None:
        assert spec.steps == defaults["steps"], name


def test_every_extra_option_is_filled_by_the_ddpm():
    options = set(DDPMSampleOptions.__dataclass_fields__)
    for name, spec in SAMPLERS.items():
        assert set(spec.extra) <= options | {"variance"}, name           # variance: the model's (Remark 7)


def test_the_sample_options_take_names_and_help_from_the_registry():
    choices = field_choices(DDPMSampleOptions)
    assert choices["sampler"] == tuple(SAMPLERS)
    assert choices["spacing"] == ("auto", *SPACINGS)
    fields = DDPMSampleOptions.__dataclass_fields__
    assert describe_default_steps() in fields["steps"].metadata["help"]
    for name, spec in SAMPLERS.items():
        assert f"{'T' if spec.steps is None else spec.steps} for {name}" in fields["steps"].metadata["help"]
        assert name in fields["sampler"].metadata["help"] and spec.spacing in fields["spacing"].metadata["help"]
    with pytest.raises(ConfigError, match="ancestral, ddim"):
        get_spec("euler")


def tiny_points_ddpm() -> DDPM:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return DDPM(DDPMConfig(T=T, mlp_width=16, mlp_depth=1), DataSpec("points", (2,)))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_steps_0_and_spacing_auto_are_the_registry_defaults(name):
    model, spec = tiny_points_ddpm(), SAMPLERS[name]
    levels = []
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    default = model.sample(3, DDPMSampleOptions(sampler=name), generator=g(),
                           callback=lambda i, t, x, x0: levels.append(t))
    # one callback per visited level: the registry's default steps at its default spacing (heun's N too)
    assert levels == timestep_sequence(model.sched, spec.steps, spec.spacing)[:-1]
    assert len(levels) <= (spec.steps or T) and (spec.steps is not None or len(levels) == T)
    explicit = model.sample(3, DDPMSampleOptions(sampler=name, steps=spec.steps or T, spacing=spec.spacing),
                            generator=g())
    assert torch.equal(default, explicit)
    # the options instance, given by position or by name, is the same request
    as_options = model.sample(3, options=DDPMSampleOptions(sampler=name), generator=g())
    assert torch.equal(default, as_options)
    with pytest.raises(ConfigError, match="DDPMSampleOptions"):
        model.sample(1, options={"sampler": name})


# -- the one parser ---------------------------------------------------------------------------------


@pytest.fixture
def ddpm_run(tmp_path):
    """A DDPM run directory holding only config.toml: enough for the parsers to know its options."""
    run = RunDir(tmp_path / "ddpm")
    config = RunConfig.default("ddpm")
    config.data.name = "moons"
    run.write_config(config, DataSpec("points", (2,), 0))
    return str(run.path)


def parsed(argv: list[str]):
    return build_parser(argv).parse_args(argv)


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_typed_flags_and_the_key_value_alias_are_one_option(ddpm_run, command):
    typed = given(parsed([command, ddpm_run, "--sampler", "dpm++", "--steps", "20", "--no-clip-x0"]))
    alias = given(parsed([command, ddpm_run, "--sample-option", "sampler=dpm++", "--sample-option", "steps=20",
                          "--sample-option", "clip-x0=false"]))
    a, b = (build_sample_options(DDPMSampleOptions, (v, USER_LAYER)) for v in (typed, alias))
    assert a == b == DDPMSampleOptions(sampler="dpm++", steps=20, clip_x0=False)
    both = given(parsed([command, ddpm_run, "--sample-option", "steps=5", "--steps", "7"]))
    assert both["steps"] == "7"                               # the typed flag beats the alias


def test_unknown_options_and_bad_values_are_one_line_errors(ddpm_run):
    with pytest.raises(ConfigError, match=r"unknown key 'bogus'; valid keys: .*sampler"):
        given(parsed(["evaluate", ddpm_run, "--sample-option", "bogus=1"]))
    with pytest.raises(ConfigError, match=r"sample option\.steps: expected an integer, got 'many'"):
        given(parsed(["sample", ddpm_run, "--steps", "many"]))
    with pytest.raises(ConfigError, match=r"sample option\.eta: expected a number"):
        given(parsed(["evaluate", ddpm_run, "--sample-option", "eta=x"]))
    with pytest.raises(ConfigError, match="sample.eta must be in"):
        given(parsed(["sample", ddpm_run, "--eta", "2"]))
    with pytest.raises(ConfigError, match="expected KEY=VALUE, e.g. sampler=dpm"):
        parse_pairs(["steps"])
    with pytest.raises(ConfigError, match="sample.sampler"):
        build_sample_options(DDPMSampleOptions, ({"sampler": "euler"}, USER_LAYER))


def test_a_flag_before_the_source_does_not_hide_it(ddpm_run):
    assert source_from_argv(["--sampler", "ddim", ddpm_run, "--n", "4"], {"--n"}) == ddpm_run
    assert source_from_argv(["--n", "4", "zoo:x"], {"--n"}) == "zoo:x"
    assert source_from_argv(["--n", "4"], {"--n"}) is None
    assert given(parsed(["sample", "--sampler", "ddim", ddpm_run]))["sampler"] == "ddim"


def test_zoo_defaults_are_under_the_flags():
    loaded = LoadedRun(model=tiny_points_ddpm(), config=RunConfig.default("ddpm"), spec=DataSpec("points", (2,)),
                       step=0, sample_defaults={"sampler": "ddim", "steps": 5})
    assert run_sample_options(loaded) == DDPMSampleOptions(sampler="ddim", steps=5)
    assert run_sample_options(loaded, {"steps": "7"}) == DDPMSampleOptions(sampler="ddim", steps=7)
    layered = build_sample_options(DDPMSampleOptions, ({"sampler": "ddim", "eta": 0.5}, CARD_LAYER),
                                   ({"eta": "0.25"}, USER_LAYER))
    assert layered == DDPMSampleOptions(sampler="ddim", eta=0.25)
    with pytest.raises(ConfigError, match="the zoo entry's sample options: unknown key 'nope'"):
        run_sample_options(LoadedRun(model=loaded.model, config=loaded.config, spec=loaded.spec, step=0,
                                     sample_defaults={"nope": 1}))


def test_compare_reads_family_options_with_the_same_parser():
    from genmodels.cli.compare import family_sample_options

    assert family_sample_options(["ddpm:sampler=ddim", "ddpm:clip-x0=false"]) == \
        {"ddpm": {"sampler": "ddim", "clip_x0": "false"}}
    with pytest.raises(ConfigError, match="FAMILY:KEY=VALUE"):
        family_sample_options(["steps=5"])
