"""DDPM (Ho et al. 2020; seed section 4): the model family registered as "ddpm".

config.py      DDPMConfig (the [model] table) and DDPMSampleOptions
model.py       DDPM: the training step (Algorithm 4.1, L_vlb, L_hybrid), the samplers, RePaint and SDEdit
likelihood.py  evaluate("nll") and DDPMEvaluateOptions: Theorem 8 bound, eq. 4.8 importance sampling,
               probability-flow ODE
"""

from genmodels.models.ddpm.config import DDPMConfig, DDPMSampleOptions
from genmodels.models.ddpm.likelihood import NLL_ESTIMATES, DDPMEvaluateOptions
from genmodels.models.ddpm.model import DDPM

__all__ = ["DDPM", "NLL_ESTIMATES", "DDPMConfig", "DDPMEvaluateOptions", "DDPMSampleOptions"]
