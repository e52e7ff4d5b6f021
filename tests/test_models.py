"""Model shapes, the pytorch/examples parameter counts, and the fast ConvTranspose."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import UserError
from gan_jax.models import dcgan, layers, mlp


def _param_count(module, x):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  return sum(np.prod(p.shape) for p in jax.tree.leaves(variables["params"]))


def test_dcgan64_has_pytorch_examples_parameter_counts():
  """pytorch/examples dcgan/main.py with nz=100, ngf=ndf=64: G 3,576,704, D 2,765,568."""
  shape = (64, 64, 3)
  assert _param_count(dcgan.Generator(shape, 64), jnp.zeros((1, 100))) == 3_576_704
  assert _param_count(dcgan.Discriminator(shape, 64), jnp.zeros((1, *shape))) == 2_765_568


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_shapes(shape):
  g, d = dcgan.Generator(shape, 8), dcgan.Discriminator(shape, 8)
  z = jnp.zeros((2, 10))
  g_vars = g.init(jax.random.key(0), z, train=False)
  images = g.apply(g_vars, z, train=False)
  chex.assert_shape(images, (2, *shape))
  d_vars = d.init(jax.random.key(1), images, train=False)
  chex.assert_shape(d.apply(d_vars, images, train=False), (2,))


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


def _reference_conv_transpose(x, w, stride, padding):
  """The plain lax op: PyTorch ConvTranspose2d is lax.conv_transpose with a flipped kernel."""
  k = w.shape[0]
  return jax.lax.conv_transpose(x, w, (stride, stride), [(k - 1 - padding,) * 2] * 2,
                                dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)


@pytest.mark.parametrize("stride,padding,size", [(2, 1, 7), (2, 1, 4), (1, 0, 1), (2, 0, 5)])
def test_fast_conv_transpose_matches_lax(stride, padding, size):
  kx, kw, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (3, size, size, 5))
  w = jax.random.normal(kw, (4, 4, 6, 5))
  y = layers.conv_transpose(x, w, stride, padding)
  y_ref = _reference_conv_transpose(x, w, stride, padding)
  chex.assert_trees_all_close(y, y_ref, rtol=1e-5, atol=1e-5)
  # PyTorch's output size: (H - 1) * stride - 2 * padding + kernel
  assert y.shape[1] == (size - 1) * stride - 2 * padding + 4
  g = jax.random.normal(kg, y.shape)
  grads = jax.grad(lambda x, w: jnp.sum(layers.conv_transpose(x, w, stride, padding) * g), (0, 1))(x, w)
  grads_ref = jax.grad(lambda x, w: jnp.sum(_reference_conv_transpose(x, w, stride, padding) * g),
                       (0, 1))(x, w)
  chex.assert_trees_all_close(grads, grads_ref, rtol=1e-4, atol=1e-4)
