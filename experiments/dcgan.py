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
