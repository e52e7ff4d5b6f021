"""Every experiment file loads, validates, and builds its networks and train state."""

import jax
import pytest

from gan_jax import config as config_lib
from gan_jax import experiment, parallel, tables, trials
from gan_jax.metrics import evaluation

from conftest import ROOT, load_experiment

EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py"))


def test_the_promised_experiments_exist():
  assert {"dcgan", "gan_minimax", "wgan", "wgan_gp", "toy_ring", "toy_grid"} <= set(EXPERIMENTS)
  assert {"sngan_cifar10", "cgan_pd_cifar10", "cgan_pd_mnist", "dcgan_diffaugment"} <= set(
    EXPERIMENTS
  )


def _data_shape(config):
  """The shape of the experiment's data, without loading it: CIFAR-10 for the .npz, else MNIST."""
  if config.data.source == "toy":
    return (2,)
  cifar = config.data.source == "npz"
  size = config.data.image_size or (32 if cifar else 28)
  return (size, size, 3 if cifar else 1)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_builds(name):
  config = config_lib.validated(load_experiment(name))
  config.data.shape = _data_shape(config)
  exp = experiment.build(config, parallel.make_mesh(1))
  state = jax.eval_shape(exp.init_state)
  assert state.step.shape == ()
  if name == "wgan_gp":
    assert config.n_critic == 5 and exp.gan.gradient_penalty and config.model.d_norm != "batch"
    assert state.hparams["gp_weight"].shape == ()
  if name == "wgan":
    assert config.clip_value == 0.01 and config.optimizer.d.name == "rmsprop"
  if name in ("sngan_cifar10", "cgan_pd_cifar10"):
    assert config.loss == "hinge" and config.n_critic == 5 and exp.gan.d_tx is not exp.gan.g_tx
    assert "spectral" in state.d_stats and config.optimizer.d.schedule == "linear"
    assert exp.gan.num_classes == (10 if name == "cgan_pd_cifar10" else 0)


@pytest.mark.parametrize(
  "name", [n for n in EXPERIMENTS if "get_sweep" in (ROOT / "experiments" / f"{n}.py").read_text()]
)
def test_experiment_sweeps_are_one_vectorised_program(name):
  sweep = trials.load_trials(str(ROOT / "experiments" / f"{name}.py"))
  configs = [trials.trial_config(load_experiment(name), t) for t in sweep]
  assert len(sweep) >= 8 and len(trials.group_trials(configs, True, 16)) == 1


TABLES = sorted(p.stem for p in (ROOT / "experiments" / "tables").glob("*.py"))


@pytest.mark.parametrize("name", TABLES)
def test_table_experiments_follow_the_papers_protocols(name):
  """Each row x 10 seeds; a row's seeds are one program; every trial builds; the settings are the
  authors' (PacGAN's code: synthetic_data_experiments/*/config.py,
  stacked_MNIST_experiments/VEEGAN_experiment/config.py)."""
  path = str(ROOT / "experiments" / "tables" / f"{name}.py")
  table, sweep = tables.load(path), trials.load_trials(path)
  base = load_experiment(f"tables/{name}")
  base.eval_classifier = "a classifier"  # Stacked MNIST's evaluation needs one
  configs = [trials.trial_config(base, t) for t in sweep]
  assert len(sweep) == 10 * len(table.rows)
  rows = trials.group_trials(configs, True, 16)
  assert sorted(len(r) for r in rows) == [10] * len(table.rows)
  for config in configs[::10]:
    config = config_lib.validated(config)
    config.data.shape = (2,) if config.data.source == "toy" else (28, 28, 3)
    jax.eval_shape(experiment.build(config, parallel.make_mesh(1)).init_state)
  adam = lambda opt: (opt.name, opt.lr, opt.b1)
  if base.data.source == "toy":
    assert adam(base.optimizer.g) == adam(base.optimizer.d) == ("adam", 1e-4, 0.8)
    assert base.train.batch_size == 100 and base.train.num_steps == 400 * 100_000 // 100
    assert tuple(base.model.g_hidden) == (400,) * 4 and tuple(base.model.d_hidden) == (200,) * 3
    assert base.model.d_maxout == 5 and base.model.init_std == 0.02 and base.model.nz == 2
    assert evaluation.default_num_samples(base) == 2500
    packs = any(row.overrides.get("pac", 1) > 1 for row in table.rows)
    assert base.pac_member_batches == packs  # PacGAN's bricks.py: one G call per pack member
    # PacGAN's 2-D code trains with ALI's algorithm: both gradients at one point
    assert base.simultaneous_updates == name.startswith("pacgan_")
    # ... on a fixed set of 100,000 samples and as many packs (an epoch is 1,000 steps)
    assert base.data.toy_examples == (100_000 if name.startswith("pacgan_") else 0)
  else:
    assert adam(base.optimizer.g) == adam(base.optimizer.d) == ("adam", 2e-4, 0.5)
    assert base.train.batch_size == 64 and base.data.stacked_examples == 128_000
    assert base.model.name == "tf_dcgan" and base.model.noise == "uniform" and base.g_steps == 2
    assert base.pac_member_batches and not base.data.reshuffle and not base.simultaneous_updates
    # the authors' training set counts packs: 128,000 of them, 2,000 steps an epoch, every row
    assert [c.data.stacked_examples // c.pac for c in configs[::10]] == [128_000, 128_000]
    assert base.train.num_steps == 50 * 128_000 // 64 and base.data.split == "train+test"
    assert evaluation.default_num_samples(base) == 26_000
