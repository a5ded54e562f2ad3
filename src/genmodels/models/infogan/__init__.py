"""InfoGAN (Chen et al. 2016; seed section 3; docs/infogan.md): a GAN with latent codes c whose
mutual information with G(z, c) is maximised through the variational bound L_I."""

from genmodels.models.infogan.codes import Codes, CodeSpec, sample_codes
from genmodels.models.infogan.config import InfoGANConfig, InfoGANEvaluateOptions, InfoGANSampleOptions
from genmodels.models.infogan.model import InfoGAN

__all__ = ["InfoGAN", "InfoGANConfig", "InfoGANEvaluateOptions", "InfoGANSampleOptions", "CodeSpec", "Codes",
           "sample_codes"]
