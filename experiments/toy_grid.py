"""25 Gaussians at {-4, -2, 0, 2, 4}^2 (sigma 0.05), the PacGAN/VEEGAN 2-D mode-coverage
benchmark, with the PacGAN protocol (gan_jax.config.toy_config)."""

from gan_jax.config import toy_config


def get_config():
  return toy_config("grid25")
