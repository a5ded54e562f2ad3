"""The entries shipped in the package: each loads (hash checked, no pickle), samples in seconds on a
CPU, records how it was made, and the whole zoo stays within its size budget."""

from __future__ import annotations

import time

import pytest
import torch

import genmodels
from genmodels.run.sample_options import CARD_LAYER, build_sample_options
from genmodels.zoo import default_root, zoo_card, zoo_names

BUDGET_MB = 40          # the zoo's total size in the wheel
SAMPLE_SECONDS = 30     # 16 samples of any entry on one CPU thread (generous: the machine is shared)

NAMES = zoo_names()


def test_the_zoo_fits_its_size_budget():
    total = sum(p.stat().st_size for p in default_root().rglob("*") if p.is_file())
    assert total < BUDGET_MB * 2**20, f"the shipped zoo is {total / 2**20:.1f} MB, over {BUDGET_MB} MB"


@pytest.mark.parametrize("name", NAMES)
def test_each_entry_says_how_it_was_made(name):
    card = zoo_card(name)
    assert card["commands"]["train"].startswith("genmodels train")
    assert card["recipe"] in genmodels_recipes()
    assert card["params"] > 0 and card["sha256"] and card["train_cpu_minutes"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_each_entry_loads_and_samples_in_seconds(name):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        model = genmodels.load(f"zoo:{name}")
        with torch.no_grad():
            card_options = zoo_card(name).get("sample_options") or {}
            options = build_sample_options(model.sample_options, (card_options, CARD_LAYER))
            x = model.sample(16, options, generator=torch.Generator().manual_seed(0))
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(before)
    assert x.shape[0] == 16 and torch.isfinite(x).all()
    assert x.min() >= -1.0001 and x.max() <= 1.0001            # images in [-1, 1]
    assert seconds < SAMPLE_SECONDS, f"zoo:{name}: 16 samples took {seconds:.1f} s"


def genmodels_recipes() -> list[str]:
    from genmodels.recipes import recipe_names

    return recipe_names()
