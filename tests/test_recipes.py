"""Shipped recipes: every file parses and validates as a whole run config with a documenting comment;
`genmodels recipes` lists them; `genmodels train --recipe NAME` starts from one and flags override it."""

from __future__ import annotations

import tomllib

import pytest

from genmodels.cli import main
from genmodels.errors import ConfigError
from genmodels.recipes import load_recipe, parse_recipe, recipe_names

REQUIRED = ("ddpm-mnist-fast", "ddpm-ho2020", "ddpm-grid25", "gan-ring8")


def test_the_required_recipes_exist():
    assert set(REQUIRED) <= set(recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_each_recipe_validates_and_says_what_it_reproduces(name):
    recipe = load_recipe(name)
    recipe.config.validate()
    assert recipe.config.out == "" and recipe.config.data.name
    # the comment names what it follows, what it reached and where it was measured
    text = recipe.description.lower()
    assert len(recipe.description.splitlines()) >= 3, name
    assert "reached" in text or "measured" in text, name
    assert "cpu" in text or "gpu" in text, name


def test_a_recipe_may_not_choose_the_run_directory():
    with pytest.raises(ConfigError, match="must not set out"):
        parse_recipe("x", '# x\nout = "runs/x"\n[model]\nname = "ddpm"\n')
    with pytest.raises(ConfigError, match="unknown key 'nonsense'"):
        parse_recipe("x", '# x\n[trainer]\nnonsense = 1\n[model]\nname = "ddpm"\n')


def test_unknown_recipe_lists_the_recipes():
    with pytest.raises(ConfigError, match="ddpm-grid25"):
        load_recipe("no-such-recipe")


def test_recipes_command_lists_and_shows(capsys):
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in REQUIRED)
    assert main(["recipes", "gan-ring8"]) == 0
    shown = capsys.readouterr().out
    assert "[model]" in shown and 'name = "gan"' in shown


def test_train_from_a_recipe_with_overrides(tmp_path, one_thread):
    run = tmp_path / "run"
    argv = ["train", "--recipe", "ddpm-grid25", "--out", str(run), "--steps", "3", "--mlp-width", "16",
            "--no-progress", "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]
    assert main(argv) == 0
    written = tomllib.loads((run / "config.toml").read_text())
    recipe = load_recipe("ddpm-grid25").config
    assert written["model"]["name"] == "ddpm" and written["data"]["name"] == recipe.data.name
    assert written["trainer"]["steps"] == 3 and written["model"]["mlp_width"] == 16          # flags win
    assert written["model"]["mlp_depth"] == recipe.model.mlp_depth                          # the rest is the recipe's
    assert written["trainer"]["lr_schedule"] == recipe.trainer.lr_schedule
    # naming a model that disagrees with the recipe is refused
    assert main(["train", "gan", "--recipe", "ddpm-grid25", "--out", str(tmp_path / "r2")]) == 2
