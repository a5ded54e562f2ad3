"""Metrics: pure metric maths on feature arrays, pluggable feature extractors, and the
evaluation driver behind `genmodels evaluate`."""
