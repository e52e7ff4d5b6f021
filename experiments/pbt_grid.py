"""Population-based training against a grid search on the 25-mode grid: 8 settings of both
learning rates and Adam's beta1, each trained 3,000 steps (PacGAN's batch and layer counts,
narrower layers: G 4x256, D 3x128 maxout 5, as the demo).

  python -m gan_jax.sweep --config=experiments/pbt_grid.py --workdir=runs/grid_s0 \\
    --vectorize=true --config.seed=0
  python -m gan_jax.sweep --config=experiments/pbt_grid.py --workdir=runs/pbt_s0 \\
    --strategy=pbt --config.seed=0 --config.pbt.seed=0

Both rank the trials by modes, then the share of high-quality samples (README, "Sweeps that find
good GANs")."""

from gan_jax.config import toy_config


def get_config():
  c = toy_config("grid25")
  c.model.g_hidden, c.model.d_hidden = (256,) * 4, (128,) * 3
  c.train.num_steps = 3000
  c.eval_every = 300  # PBT ranks at the same steps
  c.pbt.interval = 300
  c.log_every = 100
  c.sample_every = 1000
  c.checkpoint_every = 600
  return c


def get_sweep(hyper):
  return hyper.product(
    hyper.zipit(
      hyper.sweep("optimizer.g.lr", [1e-4, 3e-4, 1e-3, 3e-3]),
      hyper.sweep("optimizer.d.lr", [1e-4, 3e-4, 1e-3, 3e-3]),
    ),
    hyper.zipit(
      hyper.sweep("optimizer.g.b1", [0.5, 0.8]), hyper.sweep("optimizer.d.b1", [0.5, 0.8])
    ),
  )
