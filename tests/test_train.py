"""train_and_evaluate end to end on tiny configs: determinism, exact resume, the run directory,
refusals that lose nothing, and learning on the 2-D ring."""

import gzip
import json
import os

import jax
import numpy as np
import pytest

from gan_jax import UserError, data, run_dir, train
from gan_jax.data import toy

from conftest import optimized_compiles, tiny_dcgan_config, tiny_toy_config


@pytest.fixture(scope="module")
def mnist_npz(shared_data, tmp_path_factory):
  """512 real MNIST test images as an .npz (the `npz` source)."""
  with gzip.open(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:512]
  path = tmp_path_factory.mktemp("data") / "mnist512.npz"
  np.savez(path, images=images)
  return str(path)


def _config(kind, mnist_npz, **fields):
  if kind == "toy":
    return tiny_toy_config(**fields)
  return tiny_dcgan_config(**{"data.source": "npz", "data.path": mnist_npz, **fields})


def _metrics_text(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return f.read()


@pytest.mark.parametrize("kind", ["toy", "dcgan"])
def test_resume_gives_the_uninterrupted_metrics_bit_for_bit(kind, mnist_npz, tmp_path):
  steps = 20 if kind == "toy" else 6
  whole, halves = str(tmp_path / "whole"), str(tmp_path / "halves")
  train.train_and_evaluate(_config(kind, mnist_npz, **{"train.num_steps": steps}), whole)
  train.train_and_evaluate(_config(kind, mnist_npz, **{"train.num_steps": steps // 2}), halves)
  assert sorted(os.listdir(os.path.join(halves, "checkpoints")))[-1] == str(steps // 2)
  train.train_and_evaluate(_config(kind, mnist_npz, **{"train.num_steps": steps}), halves)
  assert _metrics_text(halves) == _metrics_text(whole)
  assert len(_metrics_text(whole).splitlines()) == steps // (2 if kind == "toy" else 1)


def test_same_seed_same_curve_other_seed_other_curve(tmp_path):
  for name, seed in (("a", 0), ("b", 0), ("c", 1)):
    train.train_and_evaluate(tiny_toy_config(seed=seed), str(tmp_path / name))
  assert _metrics_text(tmp_path / "a") == _metrics_text(tmp_path / "b")
  assert _metrics_text(tmp_path / "a") != _metrics_text(tmp_path / "c")


def test_run_directory_contract(tmp_path):
  workdir = tmp_path / "run"
  config = tiny_toy_config(**{"checkpoint_every": 5, "keep_checkpoints": 2})
  train.train_and_evaluate(config, str(workdir))
  with open(workdir / "config.json") as f:
    saved = json.load(f)
  assert saved["loss"] == config.loss and saved["data"]["shape"] == [2]
  records = [json.loads(line) for line in _metrics_text(workdir).splitlines()]
  assert [r["step"] for r in records] == list(range(2, 21, 2))
  assert {"step", "d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"} <= set(
    records[0]
  )
  assert sorted(os.listdir(workdir / "samples")) == ["step_0000010.png", "step_0000020.png"]
  assert (workdir / "curves.png").stat().st_size > 0
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir / "tensorboard"))
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [15, 20]  # keep 2


def test_workdir_of_another_experiment_is_refused_untouched(tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_toy_config(), workdir)
  before = _metrics_text(workdir)
  with pytest.raises(UserError, match="different experiment.*loss"):
    train.train_and_evaluate(tiny_toy_config(loss="hinge"), workdir)
  assert _metrics_text(workdir) == before
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["loss"] == "non_saturating"


def test_nan_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  real_from_toy = data.from_toy

  def poisoned_from_toy(*args):
    dataset = real_from_toy(*args)
    clean = dataset.batch
    dataset.batch = lambda step: clean(step) * (np.nan if step >= 12 else 1.0)
    return dataset

  monkeypatch.setattr(data, "from_toy", poisoned_from_toy)
  workdir = tmp_path / "run"
  with pytest.raises(
    UserError, match="non-finite .*at step 13; stopped, the last good checkpoint is step 10"
  ):
    train.train_and_evaluate(tiny_toy_config(checkpoint_every=5), str(workdir))
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [5, 10]


def test_ring_training_covers_the_modes(tmp_path):
  """The ring with smaller PacGAN-style networks, 1000 steps: most of the 8 modes get samples near
  them (an untrained G puts none within 0.1 of a mode). Samples come from the EMA of G's weights
  with BatchNorm statistics of their own; they cover at least as well as G's own weights."""
  config = tiny_toy_config(
    **{
      "model.g_hidden": (128, 128, 128),
      "model.d_hidden": (128, 128),
      "optimizer.g.lr": 1e-3,
      "optimizer.d.lr": 1e-3,
      "train.batch_size": 100,
      "train.num_steps": 1000,
      "log_every": 100,
      "sample_every": 1000,
      "checkpoint_every": 1000,
      "ema_decay": 0.99,
    }
  )
  with optimized_compiles():
    train.train_and_evaluate(config, str(tmp_path))
  exp, state = run_dir.restore(str(tmp_path))
  assert int(state.step) == 1000
  z = exp.noise(jax.random.key(1), 2500)
  centres, _ = toy.modes("ring8")

  def coverage(points):
    distance = np.linalg.norm(points[:, None] - centres[None], axis=-1)
    near = distance.min(1) < 0.1  # ten sigma: a loose notion of "on a mode" early in training
    return len(np.unique(distance.argmin(1)[near])), near.mean()

  covered, near = coverage(exp.sample(state, z))
  assert covered >= 6 and near > 0.2, (covered, near)
  raw = state.replace(ema_params=state.g_params, hparams={**state.hparams, "ema_decay": 0.0})
  raw_covered, raw_near = coverage(exp.sample(raw, z))
  assert covered >= raw_covered and near >= raw_near, (covered, near, raw_covered, raw_near)
