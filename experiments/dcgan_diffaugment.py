"""DCGAN with DiffAugment (Zhao et al. 2020) on a subset of CIFAR-10 32x32: color, translation
and cutout applied to every batch D sees, real and generated, for data-efficient training
(data.subset=1000: the paper's 10% and 20% CIFAR-10 settings are 5,000 and 10,000 images).

Data as in experiments/sngan_cifar10.py (the CIFAR-10 test split by default).
"""

import os

from gan_jax.config import base_config, experiment_module

sngan_cifar10 = experiment_module(os.path.join(os.path.dirname(__file__), "sngan_cifar10.py"))


def get_config():
  c = base_config()
  c.data = sngan_cifar10.get_config().data
  c.data.subset = 1000
  c.loss = "non_saturating"
  c.model.name = "dcgan"
  c.model.nz = 100
  c.model.ngf = c.model.ndf = 64
  c.augment.policy = "color,translation,cutout"
  c.train.batch_size = 64
  c.train.num_steps = 5000
  return c
