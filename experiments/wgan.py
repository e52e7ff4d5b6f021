"""WGAN with weight clipping (Arjovsky et al. 2017) on MNIST with DCGAN networks:
clip 0.01, n_critic 5, RMSProp(5e-5)."""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.loss = "wasserstein"
  c.clip_value = 0.01
  c.n_critic = 5
  for opt in (c.optimizer.g, c.optimizer.d):
    opt.name = "rmsprop"
    opt.lr = 5e-5
  c.train.num_steps = 5000
  return c
