"""Named recipes: whole run configs shipped with the package, one TOML file each.

A recipe is a `config.toml` without `out`: the [data], [trainer] and [model] tables (with the
model's name) of a run, and leading `#` comment lines that say what it reproduces, the figure it
reached, the time it took and on which machine. `genmodels recipes` lists them;
`genmodels train --recipe NAME [flags]` starts from one, and flags override it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from genmodels.config import RunConfig
from genmodels.errors import ConfigError, choice_error


@dataclass(frozen=True)
class Recipe:
    """One shipped recipe: its name, the comment block that documents it, and its config."""

    name: str
    description: str          # the leading comment lines, without "# "
    config: RunConfig

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.splitlines()[0] if self.description else ""


def recipe_names() -> list[str]:
    """The names of the shipped recipes, sorted."""
    folder = resources.files(__package__)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_recipe(name: str) -> Recipe:
    """The recipe called `name` (ConfigError listing the recipes if there is none)."""
    names = recipe_names()
    if name not in names:
        raise choice_error("recipe", name, names)
    text = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_recipe(name, text)


def parse_recipe(name: str, text: str) -> Recipe:
    """A Recipe from the text of a recipe file; ConfigError for bad TOML, an `out` key or bad values."""
    source = f"recipe {name!r}"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    if "out" in doc:
        raise ConfigError(f"{source}: a recipe must not set out (the run directory is the user's)")
    config = RunConfig.from_dict(doc, source)
    try:        # a value out of its range is the recipe's, named as such
        config.validate()
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    comments = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comments.append(line[1:].strip())
    return Recipe(name=name, description="\n".join(comments).strip(), config=config)
