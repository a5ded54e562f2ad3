"""DDPM maths (seed section 4): noise schedules, the Gaussian forward process, posterior and
reverse kernels, training losses, the Theorem 8 bound, the eq. 4.8 likelihood estimate and
the samplers. Everything here is a pure function of tensors; no networks, no training loop."""
