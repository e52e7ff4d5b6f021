"""The MNIST classifier as a feature extractor, and gan_jax.evaluate on toy and image runs."""

import gzip
import json
import pathlib

import jax
import numpy as np
import pytest

from gan_jax import metrics, run_dir, train
from gan_jax.metrics import classifier, evaluation, extractors

from conftest import optimized_compiles, run_python, tiny_dcgan_config, tiny_toy_config


def _idx(path, offset):
  with gzip.open(path) as f:
    return np.frombuffer(f.read(), np.uint8, offset=offset)


@pytest.fixture(scope="module")
def mnist_test(shared_data):
  images = _idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
  labels = _idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int32)
  return images, labels


@pytest.fixture(scope="module")
def small_classifier(mnist_test, tmp_path_factory):
  """Trained on 4000 real MNIST digits for two epochs: enough to tell digits from noise."""
  images, labels = mnist_test
  with optimized_compiles():
    params, accuracy = classifier.train_classifier(
      images[:4000], labels[:4000], images[8000:], labels[8000:], epochs=2, batch_size=64
    )
  workdir = str(tmp_path_factory.mktemp("classifier"))
  classifier.save(
    workdir,
    params,
    {"dataset": "mnist", "test_accuracy": accuracy, "num_classes": 10, "image_shape": [28, 28, 1]},
  )
  return workdir, accuracy


def test_classifier_learns_and_round_trips(small_classifier, mnist_test):
  workdir, accuracy = small_classifier
  assert accuracy > 0.9
  features_of, info = classifier.load(workdir)
  features, logits = features_of(mnist_test[0][8000:8100])
  assert features.shape == (100, classifier.FEATURES) and logits.shape == (100, 10)
  assert (logits.argmax(1) == mnist_test[1][8000:8100]).mean() > 0.85
  assert len(info["sha256"]) == 64


def test_classifier_fid_tells_digits_from_noise(small_classifier, mnist_test):
  features_of, _ = classifier.load(small_classifier[0])
  images = mnist_test[0]

  def stats(x):
    s = metrics.FeatureStats(classifier.FEATURES)
    s.update(features_of(x)[0])
    return s.mean_cov()

  real_a, real_b = stats(images[4000:6000]), stats(images[6000:8000])
  noise = stats(np.random.default_rng(0).integers(0, 256, (2000, 28, 28, 1), dtype=np.uint8))
  same = metrics.frechet_distance(*real_a, *real_b)
  assert same < 0.05 * metrics.frechet_distance(*real_a, *noise)


def test_evaluate_command_on_a_toy_run(tmp_path):
  train.train_and_evaluate(tiny_toy_config(), str(tmp_path))
  out = run_python("-m", "gan_jax.evaluate", f"--workdir={tmp_path}", "--num_samples=500")
  assert out.returncode == 0, out.stderr
  result = json.loads((tmp_path / "eval.json").read_text())
  assert result["step"] == 20 and result["num_modes"] == 8 and result["how"]["num_fake"] == 500
  assert json.loads(out.stdout.strip().splitlines()[-1])["modes"] == result["modes"]


def test_evaluate_image_run(tmp_path, small_classifier, mnist_test):
  np.savez(tmp_path / "mnist.npz", images=mnist_test[0][:512])
  run = tmp_path / "run"
  train.train_and_evaluate(
    tiny_dcgan_config(**{"data.source": "npz", "data.path": str(tmp_path / "mnist.npz")}), str(run)
  )
  exp, state = run_dir.restore(str(run))
  samples = exp.sample(state, exp.noise(jax.random.key(0), 300))
  result = evaluation.sample_metrics(samples, exp.config, classifier_dir=small_classifier[0])
  for key in (
    "fid",
    "kid",
    "precision",
    "recall",
    "inception_score",
    "classes",
    "class_kl_to_uniform",
  ):
    assert np.isfinite(result[key]), key
  how = result["how"]
  assert how["num_fake"] == 300 and how["num_real"] == 512 and len(how["weights_sha256"]) == 64
  # the real side is cached beside the classifier, keyed by dataset, split and weights
  assert list(pathlib.Path(small_classifier[0]).glob("reference_mnist_test_*.npz"))


def test_training_evaluates_every_eval_every_steps(tmp_path):
  train.train_and_evaluate(tiny_toy_config(eval_every=10, eval_samples=400), str(tmp_path))
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  evals = [r for r in records if "eval/modes" in r]
  assert [r["step"] for r in evals] == [10, 20]
  assert [r["step"] for r in records] == sorted(r["step"] for r in records)
  assert all(0 <= r["eval/high_quality_percent"] <= 100 and r["eval/num_modes"] == 8 for r in evals)


def test_cached_real_statistics_belong_to_the_data_they_were_computed_on(tmp_path):
  """Two .npz files under one data.name: each evaluation gets its own file's statistics."""
  extractor = extractors.Extractor(
    lambda x: (x.reshape(len(x), -1)[:, :4].astype(np.float32), np.zeros((len(x), 2))),
    {"sha256": "0" * 64},
  )
  means = []
  for value in (10, 200):
    path = tmp_path / f"pixels_{value}.npz"
    np.savez(path, images=np.full((20, 4, 4, 1), value, np.uint8))
    config = tiny_dcgan_config(**{"data.source": "npz", "data.path": str(path)})
    means.append(evaluation.real_reference(config, extractor, "test", str(tmp_path))["mean"])
  np.testing.assert_allclose(means, [[10.0] * 4, [200.0] * 4])


def test_stacked_mnist_modes_are_read_channel_by_channel(small_classifier, mnist_test):
  """Samples stacked from digits the classifier reads right, in known triples: the evaluation
  finds exactly those modes, and each channel's digit (R, G, B order) decides the mode."""
  images, labels = mnist_test
  extractor = classifier.load(small_classifier[0])
  _, logits = extractor.features_of(images[8000:8600])
  right = 8000 + np.flatnonzero(logits.argmax(1) == labels[8000:8600])
  by_digit = {d: right[labels[right] == d] for d in range(10)}
  modes = [(1, 2, 3), (3, 2, 1), (7, 7, 7), (0, 5, 9)]
  samples = np.stack(
    [
      np.concatenate([images[by_digit[d][k % len(by_digit[d])]] for d in mode], axis=-1)
      for k in range(5)
      for mode in modes
    ]
  )
  result = evaluation.stacked_mode_coverage(samples, extractor)
  assert result["modes"] == 4 and result["how"]["num_fake"] == 20
  assert result["mode_kl_to_uniform"] == pytest.approx(np.log(1000 / 4), rel=1e-6)


def test_classifier_command_trains_on_labelled_data_of_your_own(tmp_path, mnist_test):
  images, labels = mnist_test
  own = tmp_path / "digits.npz"
  np.savez(own, images=images[:2000], labels=labels[:2000])
  workdir = tmp_path / "classifier"
  args = ["-m", "gan_jax.classifier", f"--path={own}", f"--workdir={workdir}", "--epochs=2"]
  done = run_python(*args, "--test_examples=300", "--seed=3")
  assert done.returncode == 0, done.stderr
  info = json.loads((workdir / "classifier.json").read_text())
  assert info["dataset"] == str(own) and info["image_shape"] == [28, 28, 1]
  # the accuracy it reports is that of the 300 examples the seed held out
  held_out = np.random.default_rng(3).permutation(2000)[:300]
  _, logits = classifier.load(str(workdir)).features_of(images[held_out])
  assert info["test_accuracy"] == pytest.approx((logits.argmax(1) == labels[held_out]).mean())
  assert info["test_accuracy"] > 0.8

  np.savez(own, images=images[:100])
  (tmp_path / "no_classes").mkdir()
  for extra, message in [
    ([], "has no 'labels' array"),
    (["--path=missing.npz"], "--path='missing.npz': no such file"),
    (
      [f"--path={tmp_path / 'no_classes'}"],
      f"--path={str(tmp_path / 'no_classes')!r} has no class",
    ),
  ]:
    done = run_python(*args, *extra)
    assert done.returncode == 2 and message in done.stderr.strip().splitlines()[-1], done.stderr
  np.savez(own, images=images[:100], labels=labels[:100])
  done = run_python(*args, "--test_examples=100")
  assert done.returncode == 2 and "between 1 and 99" in done.stderr
