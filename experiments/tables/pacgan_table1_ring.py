"""PacGAN Table 1, 2-D ring: GAN and PacGAN2/3/4, 10 runs each, the authors' protocol
(gan_jax.config.toy_config: 400 epochs = 400,000 steps, evaluated on 2,500 samples at the end).

  python -m gan_jax.sweep --config=experiments/tables/pacgan_table1_ring.py --workdir=runs/t1_ring \
    --vectorize=true

A row's 10 seeds train as one vectorised program. Shorter: --config.train.num_steps=N."""

from gan_jax import tables
from gan_jax.config import toy_config

# The paper's numbers quoted here are those of the project's issue 17; PacGAN2/3's were not at
# hand offline and are left out rather than quoted from memory.
TABLE = tables.Table(
  title="PacGAN Table 1, 2-D ring (8 modes, sigma 0.01)",
  source="Lin et al. 2018, Table 1",
  metrics={"modes": "modes", "high_quality_percent": "high-quality samples %"},
  rows=(
    tables.Row("GAN", {"pac": 1}, {"modes": "6.3 ± 0.5", "high_quality_percent": "98.2"}),
    tables.Row("PacGAN2", {"pac": 2}, {}),
    tables.Row("PacGAN3", {"pac": 3}, {}),
    tables.Row("PacGAN4", {"pac": 4}, {"modes": "7.8", "high_quality_percent": "95.9"}),
  ),
)


def get_config():
  c = toy_config("ring8")
  c.pac_member_batches = True  # the authors' G makes a pack's m samples in m calls
  c.simultaneous_updates = True  # their training algorithm (ALI's) updates D and G at once
  # their training set: 100,000 samples, and 100,000 packs drawn from them with replacement
  c.data.toy_examples = 100_000
  return c


get_sweep = TABLE.sweep  # the rows x seeds 0-9
