"""8 Gaussians on a ring (sigma 0.01), the PacGAN 2-D benchmark: MLP G (4x400, BatchNorm) and
maxout D (3x200, 5 pieces), Adam(1e-4, 0.5), batch 100."""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.data.source = "toy"
  c.data.name = "ring8"
  c.model.name = "mlp"
  c.model.nz = 2
  c.model.g_hidden = (400, 400, 400, 400)
  c.model.g_norm = "batch"
  c.model.g_output = "linear"
  c.model.d_hidden = (200, 200, 200)
  c.model.d_maxout = 5
  c.model.d_norm = "none"
  c.optimizer.g.lr = c.optimizer.d.lr = 1e-4
  c.train.batch_size = 100
  c.train.num_steps = 3000
  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.num_samples = 2500
  return c
