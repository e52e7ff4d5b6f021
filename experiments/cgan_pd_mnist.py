"""Class-conditional DCGAN on MNIST 28x28x1 with the projection discriminator (Miyato and Koyama
2018): conditional BatchNorm in G, <embed(y), features> added to D's output, spectral norm on every
D layer (no BatchNorm in D), hinge loss, Adam(2e-4, 0.5), batch 64.

Offline: --config.data.manual_dir=FOLDER holding MNIST's four original .gz files. With
--config.eval_classifier=DIR (python -m gan_jax.classifier) training logs the conditional accuracy.
"""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.loss = "hinge"
  c.model.name = "dcgan"
  c.model.nz = 100
  c.model.ngf = c.model.ndf = 64
  c.model.d_norm = "none"
  c.model.d_spectral_norm = True
  c.model.num_classes = 10
  c.model.conditioning = "projection"
  c.train.batch_size = 64
  c.train.num_steps = 8000
  c.num_samples = 100  # a grid of 10 rows, one per class
  return c
