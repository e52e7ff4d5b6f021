"""Class-conditional DCGAN on MNIST 28x28x1 with the projection discriminator (Miyato and Koyama
2018): experiments/dcgan.py with conditional BatchNorm in G, <embed(y), features> added to D's
output, spectral norm on every D layer (no BatchNorm in D) and the hinge loss.

Offline: --config.data.manual_dir=FOLDER holding MNIST's four original .gz files. With
--config.eval_classifier=DIR (python -m gan_jax.classifier) training logs the conditional accuracy.
"""

import os

from gan_jax.config import experiment_module

dcgan = experiment_module(os.path.join(os.path.dirname(__file__), "dcgan.py"))


def get_config():
  c = dcgan.get_config()
  c.loss = "hinge"
  c.model.d_norm = "none"
  c.model.d_spectral_norm = True
  c.model.num_classes = 10
  c.model.conditioning = "projection"
  c.train.num_steps = 8000
  c.num_samples = 100  # a grid of 10 rows, one per class
  return c
