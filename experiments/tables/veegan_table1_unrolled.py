"""VEEGAN Table 1's Unrolled GAN rows (Metz et al. 2017, G's loss through 5 unrolled D updates) on
the 2-D ring and grid, 10 runs each, with PacGAN's 2-D protocol (gan_jax.config.toy_config), so
that the row sits beside PacGAN Table 1's.

  python -m gan_jax.sweep --config=experiments/tables/veegan_table1_unrolled.py \
    --workdir=runs/veegan_t1 --vectorize=true

Shorter: --config.train.num_steps=N."""

from gan_jax import tables
from gan_jax.config import toy_config

TABLE = tables.Table(
  title="VEEGAN Table 1, Unrolled GAN (5 unrolled D updates)",
  source="Srivastava et al. 2017, Table 1",
  metrics={"modes": "modes", "high_quality_percent": "high-quality samples %"},
  rows=(
    tables.Row(
      "Unrolled GAN, ring",
      {"data.name": "ring8", "unroll_steps": 5},
      {"modes": "7.6", "high_quality_percent": "35.6"},
    ),
    tables.Row(
      "Unrolled GAN, grid",
      {"data.name": "grid25", "unroll_steps": 5},
      {"modes": "23.6", "high_quality_percent": "16"},
    ),
  ),
)


def get_config():
  return toy_config("ring8")


get_sweep = TABLE.sweep  # the rows x seeds 0-9
