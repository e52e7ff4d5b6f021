"""DCGAN generator and discriminator (Radford et al. 2015), sized by the image resolution.

A resolution is base * 2**k with base 4 or 7: 64 = 4*2^4 and 32 = 4*2^3 follow pytorch/examples
`dcgan/main.py`; 28 = 7*2^2 is the MNIST variant (G: Dense 7*7*2ngf, ConvT ngf, ConvT C).
"""

import flax.linen as nn
import jax.numpy as jnp

from gan_jax import UserError
from gan_jax.models.layers import (
  DCGAN_INIT,
  Conv,
  ConvTranspose,
  discriminator_output,
  generator_norm,
  normalization,
  spectral_norm,
)


def resolution_factors(size: int) -> tuple[int, int]:
  """(base, k) with size = base * 2**k, base in (4, 7), k >= 1."""
  for base in (4, 7):
    k, s = 0, size
    while s > base and s % 2 == 0:
      s, k = s // 2, k + 1
    if s == base and k >= 1:
      return base, k
  raise UserError(
    f"dcgan needs a square image of size 4*2^k or 7*2^k (28, 32, 64, ...), got {size}; "
    "set --config.data.image_size"
  )


class Generator(nn.Module):
  image_shape: tuple[int, int, int]
  ngf: int = 64
  norm: str = "batch"
  axis_name: str | None = None
  dtype: str = "float32"
  num_classes: int = 0  # > 0: class-conditional BatchNorm
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, z, train: bool, labels=None):
    height, _, channels = self.image_shape
    base, k = resolution_factors(height)
    features = self.ngf * 2 ** (k - 1)
    norm = generator_norm(self.norm, train, self.axis_name, self.dtype, labels, self.num_classes)
    sn = lambda layer: spectral_norm(layer, self.spectral_norm, train)
    # On a 1x1 input PyTorch's first ConvTranspose(4, 1, 0) is this Dense, parameter for parameter.
    dense = nn.Dense(
      base * base * features, use_bias=False, kernel_init=DCGAN_INIT, dtype=self.dtype
    )
    x = sn(dense)(z).reshape(z.shape[0], base, base, features)
    x = nn.relu(norm(x))
    for _ in range(k - 1):
      features //= 2
      x = nn.relu(norm(sn(ConvTranspose(features))(x)))
    return jnp.tanh(sn(ConvTranspose(channels))(x)).astype(jnp.float32)


class Discriminator(nn.Module):
  """Returns one logit (or critic value) per image (with its class logits for ACGAN)."""

  image_shape: tuple[int, int, int]
  ndf: int = 64
  norm: str = "batch"
  axis_name: str | None = None
  dtype: str = "float32"
  num_classes: int = 0
  conditioning: str = "projection"  # or "acgan"
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, train: bool, labels=None):
    _, k = resolution_factors(self.image_shape[0])
    use_bias = self.norm == "none"
    x = x.astype(self.dtype)
    for i in range(k):
      x = spectral_norm(Conv(self.ndf * 2**i, use_bias=use_bias), self.spectral_norm, train)(x)
      if i > 0:  # no normalisation on the first layer (Radford et al.)
        x = normalization(self.norm, train, self.axis_name, self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    # PyTorch's last Conv(4, 1, 0) over the 4x4 map is this Dense.
    return discriminator_output(
      x.reshape(x.shape[0], -1),
      labels,
      self.num_classes,
      self.conditioning,
      self.spectral_norm,
      train,
      self.dtype,
      DCGAN_INIT,
      use_bias=False,
    )
