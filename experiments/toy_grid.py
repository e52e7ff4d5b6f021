"""25 Gaussians on a 5x5 grid (sigma 0.05), the PacGAN 2-D benchmark; same networks as toy_ring."""

from experiments import toy_ring


def get_config():
  c = toy_ring.get_config()
  c.data.name = "grid25"
  return c
