"""8 Gaussians on the unit circle (sigma 0.01), the PacGAN/VEEGAN 2-D mode-coverage benchmark, with
the PacGAN protocol (gan_jax.config.toy_config)."""

from gan_jax.config import toy_config


def get_config():
  return toy_config("ring8")


def get_sweep(hyper):
  """12 trials, one vmapped program: learning rates of both nets x seeds."""
  return hyper.product(
    hyper.zipit(
      hyper.sweep("optimizer.g.lr", [5e-5, 1e-4, 2e-4, 4e-4]),
      hyper.sweep("optimizer.d.lr", [5e-5, 1e-4, 2e-4, 4e-4]),
    ),
    hyper.sweep("seed", [0, 1, 2]),
  )
