"""Metrics against independent references: closed forms, direct NumPy formulas, known answers."""

import warnings

import jax
import numpy as np
import pytest

from gan_jax import metrics
from gan_jax.data import stacked_mnist, toy
from gan_jax.metrics import coverage

RNG = np.random.default_rng(0)


def _random_cov(d):
  a = RNG.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_closed_forms():
  mu1, mu2 = RNG.normal(size=6), RNG.normal(size=6)
  s1, s2 = RNG.uniform(0.5, 2, 6), RNG.uniform(0.5, 2, 6)
  diagonal = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  np.testing.assert_allclose(
    metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)), diagonal, rtol=1e-10
  )
  c1, c2 = _random_cov(6), _random_cov(6)
  # Tr((C1 C2)^1/2) = sum of square roots of the (real, positive) eigenvalues of C1 C2
  expected = (
    np.sum((mu1 - mu2) ** 2)
    + np.trace(c1 + c2)
    - 2 * np.sum(np.sqrt(np.linalg.eigvals(c1 @ c2).real))
  )
  np.testing.assert_allclose(metrics.frechet_distance(mu1, c1, mu2, c2), expected, rtol=1e-8)
  assert abs(metrics.frechet_distance(mu1, c1, mu1, c1)) < 1e-8


def test_feature_stats_stream_matches_numpy():
  x = RNG.normal(size=(1000, 5)) * 3 + 1
  stats = metrics.FeatureStats(5)
  for block in np.array_split(x, 7):
    stats.update(block.astype(np.float32))
  mean, cov = stats.mean_cov()
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-6)
  np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-5, atol=1e-6)
  # FID of two samples of the same Gaussian is near 0, of a shifted one near the shift squared
  y = RNG.normal(size=(20000, 5))
  s_same, s_shift = metrics.FeatureStats(5), metrics.FeatureStats(5)
  s_same.update(RNG.normal(size=(20000, 5)))
  s_shift.update(RNG.normal(size=(20000, 5)) + 2.0)
  s_y = metrics.FeatureStats(5)
  s_y.update(y)
  assert metrics.frechet_distance(*s_y.mean_cov(), *s_same.mean_cov()) < 0.01
  np.testing.assert_allclose(
    metrics.frechet_distance(*s_y.mean_cov(), *s_shift.mean_cov()), 20.0, rtol=0.02
  )


def _numpy_mmd2(x, y):
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1) ** 3
  m = len(x)
  kxx, kyy = k(x, x), k(y, y)
  return (
    (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    - 2 * k(x, y).mean()
  )


def test_kid_matches_the_direct_formula():
  real, fake = RNG.normal(size=(300, 8)), RNG.normal(size=(250, 8)) + 0.3
  mean, std = metrics.kernel_inception_distance(real, fake, num_subsets=5, subset_size=100, seed=3)
  rng = np.random.default_rng(3)
  values = [
    _numpy_mmd2(
      real[rng.choice(300, 100, replace=False)], fake[rng.choice(250, 100, replace=False)]
    )
    for _ in range(5)
  ]
  np.testing.assert_allclose([mean, std], [np.mean(values), np.std(values)], rtol=1e-4, atol=1e-6)


def test_inception_score_on_hand_made_logits():
  confident_uniform = np.eye(10)[np.arange(1000) % 10] * 50.0
  np.testing.assert_allclose(metrics.inception_score(confident_uniform)[0], 10.0, rtol=1e-4)
  one_class = np.tile(np.eye(10)[3] * 50.0, (1000, 1))
  np.testing.assert_allclose(metrics.inception_score(one_class)[0], 1.0, rtol=1e-4)
  undecided = np.zeros((1000, 10))
  np.testing.assert_allclose(metrics.inception_score(undecided)[0], 1.0, rtol=1e-6)


def test_precision_recall_known_answers():
  real = RNG.normal(size=(2000, 2))
  assert metrics.precision_recall(real, real) == (1.0, 1.0)
  assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)
  # fakes from the left half of the real cloud: all realistic, but they cover half of it
  left = real[real[:, 0] < 0]
  precision, recall = metrics.precision_recall(real, left)
  assert precision == 1.0 and 0.4 < recall < 0.6


def test_toy_mode_coverage_on_placed_samples():
  centres, sigma = toy.modes("ring8")
  good = np.repeat(centres[:5], 10, axis=0) + sigma  # 5 modes, all within 3 sigma
  far = np.zeros((50, 2))  # the centre: nearest to some mode, too far
  result = metrics.toy_mode_coverage(np.concatenate([good, far]), "ring8")
  assert result == {"modes": 5, "num_modes": 8, "high_quality_percent": 50.0}
  # as a sweep computes it on device, for every stacked trial at once
  trials = np.stack([np.concatenate([good, far]), np.concatenate([good[:10], far, good[10:]])])
  on_device = jax.vmap(lambda x: coverage.toy_mode_coverage_traced(x, "ring8"))(trials)
  assert jax.tree.map(lambda v: v.tolist(), on_device) == {
    "modes": [5, 5],
    "num_modes": [8, 8],
    "high_quality_percent": [50.0, 50.0],
  }
  random = np.random.default_rng(0).normal(size=(2500, 2))
  expected = metrics.toy_mode_coverage(random, "ring8")
  traced = coverage.toy_mode_coverage_traced(random, "ring8")
  assert {k: float(v) for k, v in traced.items()} == pytest.approx(expected)


def test_class_coverage():
  logits = np.eye(10)[[0, 0, 1, 1]]
  result = metrics.class_coverage(logits)
  assert result["classes"] == 2
  np.testing.assert_allclose(result["class_kl_to_uniform"], np.log(5))
  assert metrics.class_coverage(np.eye(10))["class_kl_to_uniform"] == pytest.approx(0.0)


def test_conditional_accuracy():
  asked = np.array([0, 0, 1, 1, 2, 2])
  logits = np.eye(3)[[0, 0, 1, 0, 0, 0]]  # class 0 always right, 1 half the time, 2 never
  result = metrics.conditional_accuracy(logits, asked)
  assert result["conditional_accuracy"] == pytest.approx(3 / 6)
  assert result["per_class_accuracy"] == [1.0, 0.5, 0.0]


def test_frechet_distance_uses_no_deprecated_scipy_call():
  """scipy.linalg.sqrtm's `disp` argument is deprecated (gone in SciPy 1.18)."""
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.5
  with warnings.catch_warnings():
    warnings.simplefilter("error", DeprecationWarning)
    value = metrics.frechet_distance(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
  assert value > 0


def test_stacked_mnist_modes_and_kl_of_hand_built_digit_triples():
  triples = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 7], [9, 9, 9], [1, 2, 3], [3, 2, 1]])
  result = stacked_mnist.mode_coverage(triples)
  assert result["modes"] == 5 and result["num_modes"] == 1000
  p = np.array([2, 1, 1, 1, 1]) / 6  # modes 0, 7, 999, 123, 321
  assert result["mode_kl_to_uniform"] == pytest.approx(np.sum(p * np.log(p / (1 / 1000))))
  every_mode = np.stack(np.unravel_index(np.arange(1000), (10, 10, 10)), axis=1)
  assert stacked_mnist.mode_coverage(every_mode)["mode_kl_to_uniform"] == pytest.approx(0, abs=1e-9)
