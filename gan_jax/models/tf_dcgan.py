"""The DCGAN of carpedm20/DCGAN-tensorflow, the network of PacGAN's and VEEGAN's Stacked-MNIST code.

Four 5x5 layers of stride 2 each way, with TensorFlow's "SAME" padding, whatever the image size:
G projects z to (s/16, s/16, 8 ngf) and grows it to s/8, s/4, s/2 and s, each size rounded up
(2, 4, 7, 14, 28 for MNIST); D shrinks the image through ndf, 2 ndf, 4 ndf and 8 ndf channels to
one logit. Every layer has a bias. BatchNorm (momentum 0.9, eps 1e-5, scale from 1) follows every
layer but D's first and G's last. Weights N(0, 0.02), the convs' truncated at 2 sigma; biases 0.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.layers import conv, conv_transpose, normalization, patches

_KERNEL, _STRIDE = 5, 2
_INIT = nn.initializers.normal(0.02)
_CONV_INIT = nn.initializers.truncated_normal(0.02)  # tf.truncated_normal_initializer(0.02)


def same_padding(size: int) -> tuple[int, int]:
  """TensorFlow's "SAME" padding (before, after) of a 5x5 stride-2 conv over `size` pixels: the
  output has ceil(size / 2) pixels and the odd pixel of padding goes after."""
  total = max((math.ceil(size / _STRIDE) - 1) * _STRIDE + _KERNEL - size, 0)
  return total // 2, total - total // 2


def _norm(kind: str, train: bool, axis_name, dtype):  # TensorFlow's BatchNorm scale starts at 1
  return normalization(kind, train, axis_name, dtype, scale_init=nn.initializers.ones)


class _Bias(nn.Module):
  @nn.compact
  def __call__(self, x):
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    return x + jnp.asarray(bias, x.dtype)


def _overhangs(small_hw) -> bool:
  """Whether the kernel is larger than the conv's output map (G's and D's 2x2 and 4x4 maps). There
  XLA:CPU's convolutions run 20-100x slower than im2col and a matmul (benchmarks/NOTES.md)."""
  return min(small_hw) < _KERNEL


def _valid_conv(padded, w):
  """The 5x5 stride-2 conv of an input already padded."""
  small_hw = [(n - _KERNEL) // _STRIDE + 1 for n in padded.shape[1:3]]
  if _overhangs(small_hw):
    return patches(padded, _KERNEL, _STRIDE, 0) @ w.reshape(-1, w.shape[-1])
  return conv(padded, w, _STRIDE, 0)


def _valid_conv_transpose(x, w, padded_hw):
  """The transpose of `_valid_conv` from a padded input of size `padded_hw`."""
  if _overhangs(x.shape[1:3]):
    padded = jax.ShapeDtypeStruct((x.shape[0], *padded_hw, w.shape[2]), x.dtype)
    return jax.linear_transpose(lambda p: _valid_conv(p, w), padded)(x)[0]
  return conv_transpose(x, w, _STRIDE, 0, padded_hw)


class SameConv(nn.Module):
  """tf.nn.conv2d(x, w, strides 2, "SAME") + bias, as the conv of the padded input."""

  features: int

  @nn.compact
  def __call__(self, x):
    shape = (_KERNEL, _KERNEL, x.shape[-1], self.features)
    w = jnp.asarray(self.param("kernel", _CONV_INIT, shape), x.dtype)
    (top, bottom), (left, right) = same_padding(x.shape[1]), same_padding(x.shape[2])
    x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return _Bias()(_valid_conv(x, w))


class SameConvTranspose(nn.Module):
  """tf.nn.conv2d_transpose(x, w, output_shape, strides 2, "SAME") + bias: the transpose of
  SameConv from `size`, that is the transposed conv of the padded size, cropped."""

  features: int
  size: tuple[int, int]

  @nn.compact
  def __call__(self, x):
    shape = (_KERNEL, _KERNEL, self.features, x.shape[-1])
    w = jnp.asarray(self.param("kernel", _INIT, shape), x.dtype)
    (top, bottom), (left, right) = (same_padding(n) for n in self.size)
    height, width = self.size
    padded = _valid_conv_transpose(x, w, (top + height + bottom, left + width + right))
    return _Bias()(padded[:, top : top + height, left : left + width])


class Generator(nn.Module):
  image_shape: tuple[int, int, int]
  ngf: int = 64
  norm: str = "batch"
  axis_name: str | None = None
  dtype: str = "float32"

  @nn.compact
  def __call__(self, z, train: bool, labels=None):
    height, width, channels = self.image_shape
    sizes = [(height, width)]
    for _ in range(4):
      sizes.append(tuple(math.ceil(n / _STRIDE) for n in sizes[-1]))
    norm = lambda x: _norm(self.norm, train, self.axis_name, self.dtype)(x)
    (h, w), features = sizes[-1], self.ngf * 8
    x = nn.Dense(h * w * features, kernel_init=_INIT, dtype=self.dtype)(z)
    x = nn.relu(norm(x.reshape(z.shape[0], h, w, features)))
    for size in sizes[-2:0:-1]:
      features //= 2
      x = nn.relu(norm(SameConvTranspose(features, size)(x)))
    return jnp.tanh(SameConvTranspose(channels, sizes[0])(x)).astype(jnp.float32)


class Discriminator(nn.Module):
  image_shape: tuple[int, int, int]
  ndf: int = 64
  norm: str = "batch"
  axis_name: str | None = None
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, train: bool, labels=None):
    x = x.astype(self.dtype)
    for i in range(4):
      x = SameConv(self.ndf * 2**i)(x)
      if i > 0:
        x = _norm(self.norm, train, self.axis_name, self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    out = nn.Dense(1, kernel_init=_INIT, dtype=self.dtype)(x.reshape(x.shape[0], -1))
    return out[:, 0].astype(jnp.float32)
