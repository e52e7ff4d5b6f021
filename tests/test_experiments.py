"""Every experiment file loads, validates, and builds its networks and train state."""

import functools

import jax
import pytest

from conftest import ROOT, load_experiment
from gan_jax import config as config_lib, models
from gan_jax.train_step import init_state, make_gan

EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py"))
MNIST_SHAPE = (28, 28, 1)


def test_the_promised_experiments_exist():
  assert {"dcgan", "gan_minimax", "wgan", "wgan_gp", "toy_ring", "toy_grid"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_builds(name):
  config = load_experiment(name)
  config_lib.validate(config)
  shape = (2,) if config.data.source == "toy" else MNIST_SHAPE
  gan = make_gan(config, *models.build(config, shape))
  state = jax.eval_shape(functools.partial(init_state, gan, data_shape=shape), jax.random.key(0))
  assert state.step.shape == ()
  if name == "wgan_gp":
    assert config.n_critic == 5 and gan.gp_weight == 10.0 and config.model.d_norm != "batch"
  if name == "wgan":
    assert config.clip_value == 0.01 and config.optimizer.d.name == "rmsprop"


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS
                                  if "get_sweep" in (ROOT / "experiments" / f"{n}.py").read_text()])
def test_experiment_sweeps_are_one_vectorised_program(name):
  from gan_jax import sweep
  trials = sweep.load_trials(str(ROOT / "experiments" / f"{name}.py"))
  configs = [sweep.trial_config(load_experiment(name), t) for t in trials]
  assert len(trials) >= 12 and len(sweep.group_trials(configs, True, 16)) == 1
