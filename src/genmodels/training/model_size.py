"""Moved to `genmodels.run.model_size` (`build_model` checks a model's size before building it);
these names stay importable from here for code written before the move."""

from genmodels.run.model_size import (
    BYTES_PER_VALUE,
    allocation_refused,
    check_model_size,
    count_values,
    format_bytes,
    memory_bytes,
    size_fields,
)

__all__ = ["BYTES_PER_VALUE", "allocation_refused", "check_model_size", "count_values", "format_bytes",
           "memory_bytes", "size_fields"]
