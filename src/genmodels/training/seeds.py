"""Moved to `genmodels.run.seeds` (building a model from a run draws its `init` stream); these
names stay importable from here for code written before the move."""

from genmodels.run.seeds import derive_seed, global_rng_state, make_generator, private_global_rng, set_global_rng_state

__all__ = ["derive_seed", "global_rng_state", "make_generator", "private_global_rng", "set_global_rng_state"]
