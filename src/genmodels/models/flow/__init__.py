"""Flow matching and rectified flow (Lipman et al. 2023; Liu et al. 2023): the model family registered as "flow".

config.py  FlowConfig (the [model] table), FlowSampleOptions, FlowEvaluateOptions
model.py   Flow: the training step on the linear path, the samplers, the exact likelihood, straightness
reflow.py  the reflow pairs (noise, sample) of a previous flow (Liu et al.'s k-rectified flow)
"""

from genmodels.models.flow.config import FlowConfig, FlowEvaluateOptions, FlowSampleOptions
from genmodels.models.flow.model import Flow

__all__ = ["Flow", "FlowConfig", "FlowEvaluateOptions", "FlowSampleOptions"]
