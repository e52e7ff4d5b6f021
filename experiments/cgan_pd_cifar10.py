"""The class-conditional SNGAN of Miyato and Koyama 2018 on CIFAR-10 32x32: experiments/
sngan_cifar10.py with conditional BatchNorm in G and the projection discriminator (<embed(y), h>
added to D's output), 10 classes from the data's labels."""

import os

from gan_jax.config import experiment_module

sngan_cifar10 = experiment_module(os.path.join(os.path.dirname(__file__), "sngan_cifar10.py"))


def get_config():
  c = sngan_cifar10.get_config()
  c.model.num_classes = 10
  c.model.conditioning = "projection"
  c.num_samples = 100  # a grid of 10 rows, one per class
  return c
