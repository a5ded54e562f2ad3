"""Latent traversals (Chen et al. 2016, Figure 2): one picture per continuous code showing what
the codes control. Rows enumerate the values 0..K-1 of a categorical code, columns sweep a
continuous code from -limit to limit (the paper goes to 2, beyond the prior's support [-1, 1]);
the noise z and every other code are held fixed across the grid (other continuous codes at 0)."""

from __future__ import annotations

import torch

from genmodels.errors import ConfigError
from genmodels.models.infogan.codes import Codes, CodeSpec


def traversal_codes(spec: CodeSpec, base: Codes, *, cont_index: int = 0, cat_index: int = 0, steps: int = 10,
                    limit: float = 2.0) -> Codes:
    """The codes of one grid, row-major: (rows * steps) entries with rows = K of categorical code
    `cat_index` (1 without categorical codes) and columns = continuous code `cont_index` at
    linspace(-limit, limit, steps) (1 column without continuous codes).

    base: one draw of the codes (len 1) giving the values of the codes that are not traversed.
    """
    if len(base) != 1:
        raise ValueError(f"traversal_codes: base must hold one draw of the codes, got {len(base)}")
    if spec.categorical and not 0 <= cat_index < len(spec.categorical):
        raise ConfigError(f"traverse_cat={cat_index}: this model has {len(spec.categorical)} categorical code(s), "
                          f"valid: 0..{len(spec.categorical) - 1}")
    if spec.continuous and not 0 <= cont_index < spec.continuous:
        raise ConfigError(f"traverse_code={cont_index}: this model has {spec.continuous} continuous code(s), "
                          f"valid: 0..{spec.continuous - 1}")
    device = base.cont.device
    rows = spec.categorical[cat_index] if spec.categorical else 1
    cols = steps if spec.continuous else 1
    row, col = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
    row, col = row.reshape(-1), col.reshape(-1)                              # row-major order
    cat = [c.expand(rows * cols).clone() for c in base.cat]
    if spec.categorical:
        cat[cat_index] = row
    cont = torch.zeros(rows * cols, spec.continuous, device=device)
    if spec.continuous:
        sweep = torch.linspace(-limit, limit, cols, device=device)
        cont[:, cont_index] = sweep[col]
    return Codes(cat=cat, cont=cont)


def grid_shape(spec: CodeSpec, cat_index: int, steps: int) -> tuple[int, int]:
    """(rows, columns) of a traversal grid."""
    return (spec.categorical[cat_index] if spec.categorical else 1), (steps if spec.continuous else 1)
