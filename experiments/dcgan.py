"""DCGAN (Radford et al. 2015) on MNIST 28x28x1: non-saturating loss, Adam(2e-4, 0.5), batch 64.

Offline: --config.data.manual_dir=FOLDER holding MNIST's four original .gz files."""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.loss = "non_saturating"
  c.model.name = "dcgan"
  c.model.nz = 100
  c.model.ngf = c.model.ndf = 64
  c.train.batch_size = 64
  c.train.num_steps = 5000
  return c


def get_sweep(hyper):
  """12 trials in one vmapped program: D's learning rate (TTUR), Adam's beta1, and seeds."""
  return hyper.product(
    hyper.sweep("optimizer.d.lr", [1e-4, 2e-4, 4e-4]),
    hyper.sweep("optimizer.g.b1", [0.5, 0.9]),
    hyper.sweep("seed", [0, 1]),
  )
