"""Model shapes, the pytorch/examples parameter counts, and the fast Conv and ConvTranspose."""

import functools

import chex
import jax
import jax.numpy as jnp
import pytest

from gan_jax import UserError
from gan_jax.models import dcgan, layers, mlp

from conftest import param_count


def test_dcgan64_has_pytorch_examples_parameter_counts():
  """pytorch/examples dcgan/main.py with nz=100, ngf=ndf=64: G 3,576,704, D 2,765,568."""
  shape = (64, 64, 3)
  assert param_count(dcgan.Generator(shape, 64), jnp.zeros((1, 100))) == 3_576_704
  assert param_count(dcgan.Discriminator(shape, 64), jnp.zeros((1, *shape))) == 2_765_568


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_shapes(shape):
  g, d = dcgan.Generator(shape, 8), dcgan.Discriminator(shape, 8)
  z = jnp.zeros((2, 10))
  g_vars = jax.jit(functools.partial(g.init, train=False))(jax.random.key(0), z)
  images = jax.jit(functools.partial(g.apply, train=False))(g_vars, z)
  chex.assert_shape(images, (2, *shape))
  d_vars = jax.jit(functools.partial(d.init, train=False))(jax.random.key(1), images)
  chex.assert_shape(jax.jit(functools.partial(d.apply, train=False))(d_vars, images), (2,))


def test_dcgan_rejects_unsupported_resolution():
  with pytest.raises(UserError, match="4\\*2\\^k or 7\\*2\\^k"):
    dcgan.resolution_factors(30)


def test_mlp_shapes_and_maxout():
  g = mlp.Generator((28, 28, 1), (16,), norm="batch")
  d = mlp.Discriminator((16, 8), maxout=5)
  z = jnp.ones((3, 4))
  images = g.apply(g.init(jax.random.key(0), z, train=False), z, train=False)
  chex.assert_shape(images, (3, 28, 28, 1))
  d_vars = d.init(jax.random.key(0), images, train=False)
  assert d_vars["params"]["Dense_0"]["kernel"].shape == (784, 80)
  chex.assert_shape(d.apply(d_vars, images, train=False), (3,))


def _reference_conv(x, w, stride, padding):
  return jax.lax.conv_general_dilated(
    x, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def _reference_conv_transpose(x, w, stride, padding):
  """The plain lax op: PyTorch ConvTranspose2d is lax.conv_transpose with a flipped kernel."""
  k = w.shape[0]
  return jax.lax.conv_transpose(
    x,
    w,
    (stride, stride),
    [(k - 1 - padding,) * 2] * 2,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    transpose_kernel=True,
  )


def _assert_same_function(fast, reference, x, w):
  """Equal outputs, equal gradients for a random output cotangent, and equal second-order
  gradients of a gradient-penalty-like term (WGAN-GP and R1 differentiate through the backward)."""
  y = jax.jit(fast)(x, w)
  chex.assert_trees_all_close(y, jax.jit(reference)(x, w), rtol=1e-5, atol=1e-5)
  g = jax.random.normal(jax.random.key(1), y.shape)
  grads = jax.jit(jax.grad(lambda x, w: jnp.sum(fast(x, w) * g), (0, 1)))(x, w)
  grads_ref = jax.jit(jax.grad(lambda x, w: jnp.sum(reference(x, w) * g), (0, 1)))(x, w)
  chex.assert_trees_all_close(grads, grads_ref, rtol=1e-4, atol=1e-4)

  def penalty_grads(f):
    input_grad = jax.grad(lambda x, w: jnp.sum(f(x, w) * g))
    return jax.jit(jax.grad(lambda x, w: jnp.sum(input_grad(x, w) ** 2), (0, 1)))(x, w)

  chex.assert_trees_all_close(penalty_grads(fast), penalty_grads(reference), rtol=1e-4, atol=1e-3)
  return y


# Grow (a ConvTranspose's forward, a Conv's input gradient) with big_channels <= layers.FEW_CHANNELS
# is col2im; with more, one conv per output phase where the kernel is a multiple of the stride (> 1)
# (stride 4 with padding 1 shifts some phases out of range), else lax.
@pytest.mark.parametrize("big_channels", [3, 6])
@pytest.mark.parametrize(
  "kernel,stride,padding,size",
  [(4, 2, 1, 7), (4, 2, 1, 4), (4, 1, 0, 1), (4, 2, 0, 5), (3, 2, 1, 4), (4, 4, 0, 3)],
)
def test_fast_conv_transpose_matches_lax(kernel, stride, padding, size, big_channels):
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (3, size, size, 5))
  w = jax.random.normal(kw, (kernel, kernel, big_channels, 5))
  y = _assert_same_function(
    lambda x, w: layers.conv_transpose(x, w, stride, padding),
    lambda x, w: _reference_conv_transpose(x, w, stride, padding),
    x,
    w,
  )
  # PyTorch's output size: (H - 1) * stride - 2 * padding + kernel
  assert y.shape[1] == (size - 1) * stride - 2 * padding + kernel


@pytest.mark.parametrize("big_channels", [3, 6])
@pytest.mark.parametrize(
  "kernel,stride,padding,size",
  [(4, 2, 1, 8), (4, 2, 1, 7), (4, 1, 0, 4), (4, 2, 0, 9), (3, 2, 1, 8), (4, 4, 1, 10)],
)
def test_fast_conv_matches_lax(kernel, stride, padding, size, big_channels):
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (3, size, size, big_channels))
  w = jax.random.normal(kw, (kernel, kernel, big_channels, 5))
  _assert_same_function(
    lambda x, w: layers.conv(x, w, stride, padding),
    lambda x, w: _reference_conv(x, w, stride, padding),
    x,
    w,
  )
