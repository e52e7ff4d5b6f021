"""WGAN-GP (Gulrajani et al. 2017) on MNIST with DCGAN networks: gradient penalty lambda 10 on
interpolates, n_critic 5, Adam(1e-4, 0.0, 0.9); the critic uses LayerNorm, not BatchNorm, since the
penalty is per example."""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.loss = "wgan_gp"
  c.gp_weight = 10.0
  c.n_critic = 5
  c.model.d_norm = "layer"
  for opt in (c.optimizer.g, c.optimizer.d):
    opt.lr, opt.b1, opt.b2 = 1e-4, 0.0, 0.9
  c.train.num_steps = 5000
  return c
