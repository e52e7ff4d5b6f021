"""DiffAugment's ops against independent NumPy versions on fixed random numbers, the empty policy,
and gradients through the augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import UserError, augment
from gan_jax import config as config_lib

IMAGES = np.random.default_rng(0).uniform(-1, 1, (3, 8, 6, 3)).astype(np.float32)


def _numpy_color(x, brightness, saturation, contrast):
  out = []
  for image, b, s, c in zip(x, brightness, saturation, contrast):
    image = image + (b - 0.5)
    gray = image.mean(-1, keepdims=True)
    image = (image - gray) * (2 * s) + gray
    image = (image - image.mean()) * (c + 0.5) + image.mean()
    out.append(image)
  return np.stack(out)


def _numpy_translation(x, offsets):
  out = np.zeros_like(x)
  h, w = x.shape[1:3]
  for i, (dy, dx) in enumerate(offsets):
    for r in range(h):
      for c in range(w):
        if 0 <= r + dy < h and 0 <= c + dx < w:
          out[i, r, c] = x[i, r + dy, c + dx]
  return out


def _numpy_cutout(x, offsets):
  out = x.copy()
  h, w = x.shape[1:3]
  for i, (oy, ox) in enumerate(offsets):
    size_y, size_x = (h + 1) // 2, (w + 1) // 2  # half the size, rounded up
    top, left = oy - size_y // 2, ox - size_x // 2
    out[i, max(top, 0) : top + size_y, max(left, 0) : left + size_x] = 0
  return out


def test_each_op_matches_numpy():
  color = dict(
    brightness=np.array([0.1, 0.5, 0.9], np.float32),
    saturation=np.array([0.0, 0.3, 1.0], np.float32),
    contrast=np.array([0.2, 0.7, 1.0], np.float32),
  )
  shifts = np.array([[-1, 1], [0, 0], [1, -1]])  # within 1/8 of 8x6: at most 1
  corners = np.array([[0, 0], [4, 3], [8, 5]])  # 0 .. size (even sizes)
  np.testing.assert_allclose(
    augment.apply(("color",), IMAGES, color), _numpy_color(IMAGES, **color), rtol=1e-5, atol=1e-6
  )
  np.testing.assert_array_equal(
    augment.apply(("translation",), IMAGES, {"translation": shifts}),
    _numpy_translation(IMAGES, shifts),
  )
  np.testing.assert_array_equal(
    augment.apply(("cutout",), IMAGES, {"cutout": corners}), _numpy_cutout(IMAGES, corners)
  )


def test_drawn_numbers_stay_in_the_papers_ranges():
  numbers = augment.draw(("color", "translation", "cutout"), jax.random.key(0), (500,), (32, 32))
  assert set(numbers) == {"brightness", "saturation", "contrast", "translation", "cutout"}
  assert numbers["translation"].min() == -4 and numbers["translation"].max() == 4
  assert numbers["cutout"].min() == 0 and numbers["cutout"].max() == 32  # 32 + 1 - 16 % 2


def test_empty_policy_is_the_identity_and_unknown_ops_are_refused():
  assert config_lib.augment_ops("") == () and config_lib.augment_ops(" color , cutout") == (
    "color",
    "cutout",
  )
  assert augment.apply((), IMAGES, {}) is IMAGES
  with pytest.raises(UserError, match="unknown op 'flip'"):
    config_lib.augment_ops("color,flip")


def test_gradient_flows_through_every_op_to_the_generator():
  """d/dtheta of a D-like readout of augment(G_theta(z)): finite and non-zero."""
  ops = ("color", "translation", "cutout")
  numbers = augment.draw(ops, jax.random.key(1), (3,), (8, 6))

  def readout(theta):
    fake = jnp.tanh(theta * IMAGES)  # a one-parameter "generator"
    return jnp.sum(augment.apply(ops, fake, numbers) * IMAGES)

  grad = jax.grad(readout)(1.0)
  assert np.isfinite(grad) and grad != 0
