"""Numerical checks of the seed's propositions and theorems (`genmodels theory`).

Each claim of the notes is demonstrated by a computation that uses the library's own functions
(the GAN losses, the DDPM schedule, posterior, bound and likelihood estimate): `run_all()` returns
one `Check` per line of the table. Every check takes the functions it tests as parameters, with
the library's as defaults, so that a deliberately broken formula makes its line fail.
"""

from genmodels.theory.check import Check
from genmodels.theory.runner import run_all

__all__ = ["Check", "run_all"]
