"""SNGAN's ResNet generator and discriminator (Miyato et al. 2018, appendix B), as mimicry's
`nets/sngan` and `modules/resblocks.py` build them: 3x3 convs with biases, learnable 1x1
shortcuts where a block resamples or changes width, Xavier-uniform weights (gain sqrt 2 inside
the residual branch).

At 32x32 (CIFAR-10) every block has the same width (G ngf, D ndf); at 48x48 (6 * 2^3, STL-10) and
64x64 (4 * 2^4) G halves its width from ngf at each upsampling and D doubles from ndf / 16 to ndf.
"""

import flax.linen as nn
import jax.numpy as jnp

from gan_jax import UserError
from gan_jax.models.layers import (
  Conv,
  discriminator_output,
  generator_norm,
  spectral_norm,
)

XAVIER = nn.initializers.xavier_uniform()
XAVIER_RELU = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")  # gain sqrt(2)


def bottom_and_upsamplings(size: int) -> tuple[int, int]:
  """(bottom, k) with size = bottom * 2**k, bottom 4 or 6."""
  for bottom in (4, 6):
    k = (size // bottom).bit_length() - 1
    if k >= 1 and bottom * 2**k == size:
      return bottom, k
  raise UserError(
    f"resnet needs a square image of size 4*2^k or 6*2^k (32, 48, 64, ...), got {size}; "
    "set --config.data.image_size"
  )


def _upsample(x):  # nearest neighbour, x2
  n, h, w, c = x.shape
  return jnp.broadcast_to(x[:, :, None, :, None], (n, h, 2, w, 2, c)).reshape(n, 2 * h, 2 * w, c)


def _downsample(x):  # average pooling, 2x2
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _conv(features, kernel_size, init, sn, train):
  layer = Conv(features, kernel_size, 1, kernel_size // 2, use_bias=True, kernel_init=init)
  return spectral_norm(layer, sn, train)


class GBlock(nn.Module):
  features: int
  num_classes: int = 0
  spectral_norm: bool = False
  axis_name: str | None = None
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, labels, train: bool):
    norm = lambda: generator_norm(
      "batch", train, self.axis_name, self.dtype, labels, self.num_classes
    )
    conv = lambda k, init: _conv(self.features, k, init, self.spectral_norm, train)
    h = _upsample(nn.relu(norm()(x)))
    h = conv(3, XAVIER_RELU)(h)
    h = conv(3, XAVIER_RELU)(nn.relu(norm()(h)))
    return h + conv(1, XAVIER)(_upsample(x))


class DBlock(nn.Module):
  """`optimized`: the first block (no activation before its first conv, pooling before its
  shortcut conv)."""

  features: int
  downsample: bool
  optimized: bool = False
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, train: bool):
    conv = lambda k, init: _conv(self.features, k, init, self.spectral_norm, train)
    pool = _downsample if self.downsample else lambda h: h
    h = conv(3, XAVIER_RELU)(x if self.optimized else nn.relu(x))
    h = pool(conv(3, XAVIER_RELU)(nn.relu(h)))
    if self.optimized:
      shortcut = conv(1, XAVIER)(pool(x))
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = pool(conv(1, XAVIER)(x))
    else:
      shortcut = x
    return h + shortcut


class Generator(nn.Module):
  image_shape: tuple[int, int, int]
  ngf: int = 256
  num_classes: int = 0
  spectral_norm: bool = False
  axis_name: str | None = None
  dtype: str = "float32"

  @nn.compact
  def __call__(self, z, train: bool, labels=None):
    height, _, channels = self.image_shape
    bottom, k = bottom_and_upsamplings(height)
    widths = [self.ngf] * (k + 1) if height == 32 else [self.ngf >> i for i in range(k + 1)]
    dense = nn.Dense(bottom * bottom * widths[0], kernel_init=XAVIER, dtype=self.dtype)
    x = spectral_norm(dense, self.spectral_norm, train)(z)
    x = x.reshape(z.shape[0], bottom, bottom, widths[0])
    for width in widths[1:]:
      x = GBlock(width, self.num_classes, self.spectral_norm, self.axis_name, self.dtype)(
        x, labels, train
      )
    x = nn.relu(generator_norm("batch", train, self.axis_name, self.dtype)(x))
    x = _conv(channels, 3, XAVIER, self.spectral_norm, train)(x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  """Returns one logit per image (with its class logits for ACGAN)."""

  image_shape: tuple[int, int, int]
  ndf: int = 128
  num_classes: int = 0
  conditioning: str = "projection"
  spectral_norm: bool = True
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, train: bool, labels=None):
    height = self.image_shape[0]
    bottom_and_upsamplings(height)
    sn = self.spectral_norm
    x = x.astype(self.dtype)
    if height == 32:
      x = DBlock(self.ndf, True, optimized=True, spectral_norm=sn)(x, train)
      x = DBlock(self.ndf, True, spectral_norm=sn)(x, train)
      for _ in range(2):
        x = DBlock(self.ndf, False, spectral_norm=sn)(x, train)
    else:
      x = DBlock(self.ndf >> 4, True, optimized=True, spectral_norm=sn)(x, train)
      for shift in (3, 2, 1, 0):
        x = DBlock(self.ndf >> shift, x.shape[1] % 2 == 0, spectral_norm=sn)(x, train)
    features = jnp.sum(nn.relu(x), axis=(1, 2))  # global sum pooling
    return discriminator_output(
      features, labels, self.num_classes, self.conditioning, sn, train, self.dtype, XAVIER
    )
