"""8 Gaussians on the unit circle (sigma 0.01), the PacGAN/VEEGAN 2-D mode-coverage benchmark."""

from gan_jax.config import toy_config


def get_config():
  return toy_config("ring8")
