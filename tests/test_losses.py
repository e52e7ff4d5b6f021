"""Each loss against an independent NumPy formula; penalties against closed forms."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=64).astype(np.float32) * 3
FAKE = RNG.normal(size=64).astype(np.float32) * 3


def _sigmoid(x):
  return 1 / (1 + np.exp(-x.astype(np.float64)))


def _reference(kind, real, fake):
  """(D loss, G loss) from the papers' definitions, in float64 probabilities."""
  d_real, d_fake = _sigmoid(real), _sigmoid(fake)
  cross_entropy_d = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
  return {
    "minimax": (cross_entropy_d, np.mean(np.log(1 - d_fake))),
    "non_saturating": (cross_entropy_d, -np.mean(np.log(d_fake))),
    "wasserstein": (np.mean(fake) - np.mean(real), -np.mean(fake)),
    "wgan_gp": (np.mean(fake) - np.mean(real), -np.mean(fake)),
    "hinge": (np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)), -np.mean(fake)),
    "least_squares": (
      0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake**2),
      0.5 * np.mean((fake - 1) ** 2),
    ),
  }[kind]


@pytest.mark.parametrize("kind", sorted(losses.LOSSES))
def test_loss_matches_numpy(kind):
  d_ref, g_ref = _reference(kind, REAL, FAKE)
  np.testing.assert_allclose(losses.discriminator_loss(kind, REAL, FAKE), d_ref, rtol=1e-5)
  np.testing.assert_allclose(losses.generator_loss(kind, FAKE), g_ref, rtol=1e-5)


def test_cross_entropy_is_stable_for_extreme_logits():
  real, fake = jnp.array([200.0, -200.0]), jnp.array([-200.0, 200.0])
  for kind in ("minimax", "non_saturating"):
    chex.assert_tree_all_finite(
      (losses.discriminator_loss(kind, real, fake), losses.generator_loss(kind, fake))
    )
  # log(1 + e^200) = 200 to float precision: half the batch is confidently wrong.
  np.testing.assert_allclose(losses.discriminator_loss("minimax", real, fake), 200.0, rtol=1e-6)


def test_gradient_penalty_of_a_linear_critic():
  """D(x) = w.x has gradient w everywhere: the penalty is (|w| - 1)^2 whatever eps is."""
  w = RNG.normal(size=(3, 4)).astype(np.float32)
  critic = lambda x: jnp.sum(x * w, axis=(1, 2))
  real, fake = RNG.normal(size=(8, 3, 4)), RNG.normal(size=(8, 3, 4))
  eps = RNG.uniform(size=8)
  np.testing.assert_allclose(
    losses.gradient_penalty(critic, real, fake, eps), (np.linalg.norm(w) - 1) ** 2, rtol=1e-5
  )


def test_gradient_penalty_on_the_interpolates():
  """D(x) = sum x^2: the gradient 2 x_hat depends on where eps puts the interpolate."""
  real, fake = RNG.normal(size=(8, 5)), RNG.normal(size=(8, 5))
  eps = RNG.uniform(size=8)
  x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
  expected = np.mean((np.linalg.norm(2 * x_hat, axis=1) - 1) ** 2)
  got = losses.gradient_penalty(
    lambda x: jnp.sum(x**2, axis=1),
    real.astype(np.float32),
    fake.astype(np.float32),
    eps.astype(np.float32),
  )
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_r1_penalty():
  real = RNG.normal(size=(8, 5)).astype(np.float32)
  expected = np.mean(np.sum((3 * real**2) ** 2, axis=1))  # D = sum x^3
  np.testing.assert_allclose(
    losses.r1_penalty(lambda x: jnp.sum(x**3, axis=1), real), expected, rtol=1e-5
  )


def test_penalties_have_finite_gradients_where_a_sample_has_zero_input_gradient():
  """A critic flat at some samples (here ReLU(w.x) with w.x < 0): R1 (a sum of squares) and the
  gradient penalty (a norm, differentiated at 0) still give finite parameter gradients."""
  x = jnp.array([[1.0, 2.0], [-3.0, -1.0]])

  def penalties(w):
    d_fn = lambda inputs: jax.nn.relu(inputs @ w)
    return jnp.stack([losses.r1_penalty(d_fn, x), losses.gradient_penalty(d_fn, x, x, jnp.ones(2))])

  w = jnp.array([0.5, 0.25])
  value, jacobian = penalties(w), jax.jacobian(penalties)(w)
  assert np.all(np.isfinite(jacobian)), jacobian
  np.testing.assert_allclose(value, [0.3125 / 2, ((0.5590170 - 1) ** 2 + 1) / 2], rtol=1e-5)
