"""The original GAN (Goodfellow et al. 2014) on flattened MNIST: the saturating minimax loss,
an MLP generator (2x1200 ReLU) and a maxout discriminator (2x240 units, 5 pieces).

The paper trained with SGD + momentum and dropout in D; here Adam(2e-4, 0.5) and no dropout."""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.data.source = "tfds"
  c.data.name = "mnist"
  c.loss = "minimax"
  c.model.name = "mlp"
  c.model.nz = 100
  c.model.g_hidden = (1200, 1200)
  c.model.g_norm = "none"
  c.model.d_hidden = (240, 240)
  c.model.d_maxout = 5
  c.model.d_norm = "none"
  c.train.batch_size = 100
  c.train.num_steps = 10000
  return c
