"""train_and_evaluate end to end on tiny configs: determinism, exact resume, the run directory,
refusals that lose nothing, and learning on the 2-D ring."""

import io
import json
import os

import jax
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import pytest
from tensorboard.util import tensor_util

from gan_jax import UserError, data, reporting, run_dir, train, trials
from gan_jax.data import toy

from conftest import (
  mnist_test_set,
  optimized_compiles,
  tensorboard_events,
  tiny_dcgan_config,
  tiny_toy_config,
)


@pytest.fixture(scope="module")
def mnist_npz(shared_data, tmp_path_factory):
  """512 real MNIST test images and their labels as an .npz (the `npz` source)."""
  examples = mnist_test_set(shared_data)
  path = tmp_path_factory.mktemp("data") / "mnist512.npz"
  np.savez(path, images=examples.images, labels=examples.labels)
  return str(path)


# class-conditional, projection D with spectral norm, DiffAugment, a linear learning-rate decay
CONDITIONAL = {
  "model.num_classes": 10,
  "model.d_norm": "none",
  "model.d_spectral_norm": True,
  "augment.policy": "color,translation,cutout",
  "optimizer.g.schedule": "linear",
  "train.decay_steps": 6,  # the whole run's, also while its first half trains
}


def _config(kind, mnist_npz, **fields):
  if kind == "toy":
    return tiny_toy_config(**fields)
  images = {"data.source": "npz", "data.path": mnist_npz}
  return tiny_dcgan_config(**{**images, **(CONDITIONAL if kind == "conditional" else {}), **fields})


def _metrics_text(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return f.read()


@pytest.mark.parametrize("kind", ["toy", "dcgan", "conditional"])
def test_resume_gives_the_uninterrupted_metrics_bit_for_bit(kind, mnist_npz, tmp_path):
  steps = 20 if kind == "toy" else 6
  whole, halves = str(tmp_path / "whole"), str(tmp_path / "halves")
  train.train_and_evaluate(_config(kind, mnist_npz, **{"train.num_steps": steps}), whole)
  train.train_and_evaluate(_config(kind, mnist_npz, **{"train.num_steps": steps // 2}), halves)
  assert sorted(os.listdir(os.path.join(halves, "checkpoints")))[-1] == str(steps // 2)
  train.train_and_evaluate(_config(kind, mnist_npz, **{"train.num_steps": steps}), halves)
  assert _metrics_text(halves) == _metrics_text(whole)
  assert len(_metrics_text(whole).splitlines()) == steps // (2 if kind == "toy" else 1)
  if kind == "conditional":
    # the sample grid has one row per class (16 samples: 10 rows of 1)
    grid = plt.imread(os.path.join(whole, "samples", f"step_{steps:07d}.png"))
    assert grid.shape[:2] == (10 * 29 + 1, 29 + 1)
    # and the conditional run is not resumed as an unconditional one
    before = _metrics_text(whole)
    with pytest.raises(UserError, match="model.num_classes: 10 there, 0 now"):
      unconditional = {"train.num_steps": 8, "model.num_classes": 0}
      train.train_and_evaluate(_config(kind, mnist_npz, **unconditional), whole)
    assert _metrics_text(whole) == before


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
  # TensorBoard reads the same numbers as metrics.jsonl
  events = tensorboard_events(workdir / "tensorboard")
  for key in ("d_loss", "g_loss"):
    logged = [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(key)]
    assert logged == [(r["step"], np.float32(r[key])) for r in records]
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [15, 20]  # keep 2


def test_tensorboard_shows_the_sample_grids_pixel_for_pixel(tmp_path):
  grey = np.arange(6 * 5, dtype=np.uint8).reshape(6, 5, 1)
  colour = np.zeros((4, 7, 3), np.uint8)
  colour[1, 2] = (255, 128, 1)
  writer = reporting.TensorBoardWriter(str(tmp_path))
  writer.write_image(10, "samples", grey)
  writer.write_image(20, "samples", colour)
  writer.close()
  shown = tensorboard_events(tmp_path).Images("samples")
  assert [e.step for e in shown] == [10, 20]
  for event, image in zip(shown, (grey, colour)):
    pixels = np.asarray(PIL.Image.open(io.BytesIO(event.encoded_image_string)))
    np.testing.assert_array_equal(pixels.reshape(image.shape), image)


def test_workdir_of_another_experiment_is_refused_untouched(tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_toy_config(), workdir)
  before = _metrics_text(workdir)
  with pytest.raises(UserError, match="different experiment.*loss"):
    train.train_and_evaluate(tiny_toy_config(loss="hinge"), workdir)
  assert _metrics_text(workdir) == before
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["loss"] == "non_saturating"


@pytest.mark.parametrize("stacked", [False, True], ids=["alone", "two stacked trials"])
def test_nan_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, stacked):
  real_from_toy = data.from_toy

  def poisoned_from_toy(*args):
    dataset = real_from_toy(*args)
    clean = dataset.batch
    dataset.batch = lambda step: clean(step) * (np.nan if step >= 12 else 1.0)
    return dataset

  monkeypatch.setattr(data, "from_toy", poisoned_from_toy)
  workdir = tmp_path / "run"
  config = tiny_toy_config(checkpoint_every=5, sample_every=13)
  with pytest.raises(
    UserError, match="non-finite .*at step 13; stopped, the last good checkpoint is step 10"
  ):
    if stacked:  # a vectorised sweep's trials, as one program
      other = tiny_toy_config(checkpoint_every=5, sample_every=13, seed=1)
      trials.train_trials([config, other], [str(workdir), str(tmp_path / "other")], ["a", "b"])
    else:
      train.train_and_evaluate(config, str(workdir))
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [5, 10]
  assert os.listdir(workdir / "samples") == []  # no picture of the step that went non-finite


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


def test_a_run_from_before_a_config_field_existed_resumes(tmp_path):
  """A field added to the config since a run started (absent from its config.json) is the same
  experiment at its default value, and another one otherwise."""
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny_toy_config(), str(workdir))
  saved = json.loads((workdir / "config.json").read_text())
  del saved["augment"], saved["model"]["g_spectral_norm"]
  (workdir / "config.json").write_text(json.dumps(saved))
  train.train_and_evaluate(tiny_toy_config(**{"train.num_steps": 22}), str(workdir))
  with pytest.raises(UserError, match="model.g_spectral_norm: False there, True now"):
    train.train_and_evaluate(
      tiny_toy_config(**{"train.num_steps": 24, "model.g_spectral_norm": True}), str(workdir)
    )
