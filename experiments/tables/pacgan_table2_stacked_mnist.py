"""PacGAN Table 2, Stacked MNIST (1,000 modes): DCGAN and PacDCGAN2, 10 runs each, the authors'
protocol (fjxmlzn/PacGAN, stacked_MNIST_experiments/VEEGAN_experiment): 128,000 training samples
(images, or packs of 2 images) stacked from MNIST's 70,000 digits, DCGAN with batch 64 and
Adam(2e-4, 0.5), 50 epochs (100,000 steps); modes and KL to uniform over 26,000 samples, each
channel read by the digit classifier.

  python -m gan_jax.classifier --dataset=mnist --workdir=runs/mnist_classifier --manual_dir=MNIST
  python -m gan_jax.sweep --config=experiments/tables/pacgan_table2_stacked_mnist.py \
    --workdir=runs/t2 --config.data.manual_dir=MNIST --config.eval_classifier=runs/mnist_classifier

Shorter: --config.train.num_steps=N (each trial is evaluated at its end). The network is the
authors' (carpedm20/DCGAN-tensorflow's 5x5 DCGAN, model tf_dcgan) with their noise, U(-1, 1), and
their two G updates per D update, on the same noise, their one G call per pack member (each
member's samples a BatchNorm batch of their own) and their one data order for every epoch. Where
ours still differs from their TensorFlow code: their real images are in [0, 1] while G's tanh
gives [-1, 1], ours are both in [-1, 1]."""

import os

from gan_jax import tables
from gan_jax.config import experiment_module

dcgan = experiment_module(os.path.join(os.path.dirname(__file__), "..", "dcgan.py"))

TABLE = tables.Table(
  title="PacGAN Table 2, Stacked MNIST (1,000 modes)",
  source="Lin et al. 2018, Table 2",
  metrics={"modes": "modes", "mode_kl_to_uniform": "KL to uniform"},
  rows=(
    tables.Row("DCGAN", {"pac": 1}, {"modes": "99", "mode_kl_to_uniform": "3.40"}),
    # The authors' training set is 128,000 packs (of stacked images drawn with replacement), so
    # an epoch is 2,000 steps for each row.
    tables.Row(
      "PacDCGAN2",
      {"pac": 2, "data.stacked_examples": 2 * 128_000},
      {"modes": "1000", "mode_kl_to_uniform": "0.06"},
    ),
  ),
)


def get_config():
  c = dcgan.get_config()
  c.model.name = "tf_dcgan"
  c.model.noise = "uniform"
  c.g_steps = 2
  c.pac_member_batches = True
  c.data.source = "stacked_mnist"
  c.data.name = "mnist"
  c.data.split = "train+test"
  c.data.stacked_examples = 128_000
  c.data.reshuffle = False
  c.train.num_steps = 100_000
  c.checkpoint_every = 5000
  c.sample_every = 5000
  c.eval_every = 10_000  # and at the end
  return c


get_sweep = TABLE.sweep  # the rows x seeds 0-9
