"""Fully connected G and D (Goodfellow et al. 2014) for 2-D toys and flattened images."""

import math

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.layers import normalization, spectral_norm


class Generator(nn.Module):
  output_shape: tuple[int, ...]
  hidden: tuple[int, ...] = (256, 256)
  norm: str = "none"
  output: str = "tanh"
  axis_name: str | None = None
  dtype: str = "float32"
  spectral_norm: bool = False
  init_std: float = 0.0

  @nn.compact
  def __call__(self, z, train: bool, labels=None):
    dense = lambda n: _dense(n, self.dtype, self.init_std, self.spectral_norm, train)
    x = z
    for width in self.hidden:
      x = dense(width)(x)
      x = nn.relu(_feature_norm(self.norm, train, self.axis_name, self.dtype)(x))
    x = dense(math.prod(self.output_shape))(x)
    x = jnp.tanh(x) if self.output == "tanh" else x
    return x.reshape(z.shape[0], *self.output_shape).astype(jnp.float32)


class Discriminator(nn.Module):
  hidden: tuple[int, ...] = (256, 256)
  maxout: int = 0  # pieces per maxout unit; 0 = LeakyReLU(0.2)
  norm: str = "none"
  axis_name: str | None = None
  dtype: str = "float32"
  spectral_norm: bool = False
  init_std: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool, labels=None):
    dense = lambda n: _dense(n, self.dtype, self.init_std, self.spectral_norm, train)
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for width in self.hidden:
      dense_out = dense(width * max(self.maxout, 1))(x)
      if self.maxout:
        x = _maxout(dense_out.reshape(x.shape[0], width, self.maxout))
      else:
        x = nn.leaky_relu(dense_out, 0.2)
      x = _feature_norm(self.norm, train, self.axis_name, self.dtype)(x)
    return dense(1)(x)[:, 0].astype(jnp.float32)


def _dense(features, dtype, init_std, sn, train):
  """A Dense layer with weights N(0, init_std) (PacGAN's toys), or Flax's LeCun normal at 0."""
  init = nn.initializers.normal(init_std) if init_std else nn.linear.default_kernel_init
  return spectral_norm(nn.Dense(features, dtype=dtype, kernel_init=init), sn, train)


def _maxout(pieces):
  # The gradient goes to the winning piece alone. jnp.max's rule divides by the number of ties
  # found by comparing with the recomputed maximum, which XLA can make 0/0 when weights are clipped.
  best = jnp.argmax(pieces, axis=-1)[..., None]
  return jnp.take_along_axis(pieces, best, axis=-1)[..., 0]


def _feature_norm(kind, train, axis_name, dtype):
  if kind == "layer":
    return nn.LayerNorm(dtype=dtype)
  return normalization(kind, train, axis_name, dtype)
