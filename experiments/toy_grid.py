"""25 Gaussians at {-4, -2, 0, 2, 4}^2 (sigma 0.05), the PacGAN/VEEGAN 2-D mode-coverage
benchmark."""

from gan_jax.config import toy_config


def get_config():
  c = toy_config("grid25")
  c.train.num_steps = 5000
  return c
