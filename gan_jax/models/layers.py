"""Layers shared by the models.

`Conv` and `ConvTranspose` (PyTorch's Conv2d / ConvTranspose2d semantics, NHWC) are one pair of
linear maps with hand-picked implementations of their three operations, chosen by what XLA:CPU runs
fastest (benchmarks/NOTES.md):
  shrink  big image -> small (a strided conv),
  grow    small -> big (its linear transpose),
  weight  the kernel's gradient,
each the lax convolution, except when the big side has few channels (the 1- or 3-channel image
layers): there im2col patches and matmuls, since lax's weight gradient of such a layer runs ~10x
slower than the same matmul.
A Conv runs shrink forward and grow + weight backward; a ConvTranspose grow forward and shrink +
weight backward. `lax.conv_transpose` (flax's ConvTranspose) is never used: XLA:CPU computes its
weight gradient with a generic loop, 2-5x slower.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DCGAN_INIT = nn.initializers.normal(0.02)   # Radford et al.: weights from N(0, 0.02)
_DIMS = ("NHWC", "HWIO", "NHWC")
FEW_CHANNELS = 4   # up to this many channels on the big side, shrink and weight use patches


def _patches(big, kernel: int, stride: int, padding: int):
  """im2col: (N, H, W, C) -> (N, Ho, Wo, k*k*C), taps ordered (ky, kx, c) as an HWIO kernel."""
  n, h, w, c = big.shape
  ho, wo = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
  padded = jnp.pad(big, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  taps = [lax.slice(padded, (0, ky, kx, 0), (n, ky + stride * (ho - 1) + 1,
                                              kx + stride * (wo - 1) + 1, c), (1, stride, stride, 1))
          for ky in range(kernel) for kx in range(kernel)]
  return jnp.concatenate(taps, axis=-1)


def _shrink(big, w, stride, padding):
  """The strided conv: big (N, H, W, Cb), w (k, k, Cb, Cs) -> (N, Ho, Wo, Cs)."""
  if big.shape[-1] <= FEW_CHANNELS:
    return _patches(big, w.shape[0], stride, padding) @ w.reshape(-1, w.shape[-1])
  return lax.conv_general_dilated(big, w, (stride, stride), [(padding, padding)] * 2,
                                  dimension_numbers=_DIMS)


def _grow(small, w, stride, padding, big_hw):
  """The transpose of `_shrink`: small (N, Ho, Wo, Cs) -> (N, *big_hw, Cb)."""
  big = jax.ShapeDtypeStruct((small.shape[0], *big_hw, w.shape[2]), small.dtype)
  if w.shape[2] <= FEW_CHANNELS:   # col2im of the kernel's transpose matmul
    columns = small @ w.reshape(-1, w.shape[-1]).T
    (out,) = jax.linear_transpose(lambda b: _patches(b, w.shape[0], stride, padding), big)(columns)
  else:
    (out,) = jax.linear_transpose(lambda b: _shrink(b, w, stride, padding), big)(small)
  return out


def _weight_grad(big, small_grad, w, stride, padding):
  """The gradient of <_shrink(big, w), small_grad> with respect to w."""
  if big.shape[-1] <= FEW_CHANNELS:
    cols = _patches(big, w.shape[0], stride, padding)
    return (cols.reshape(-1, cols.shape[-1]).T @ small_grad.reshape(-1, w.shape[-1])).reshape(w.shape)
  _, vjp = jax.vjp(lambda w_: _shrink(big, w_, stride, padding), w)
  return vjp(small_grad)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x, w, stride: int, padding: int):
  """Conv2d without bias: x (N, H, W, Cin), w (k, k, Cin, Cout)."""
  return _shrink(x, w, stride, padding)


def _conv_fwd(x, w, stride, padding):
  return _shrink(x, w, stride, padding), (x, w)


def _conv_bwd(stride, padding, residuals, g):
  x, w = residuals
  return _grow(g, w, stride, padding, x.shape[1:3]), _weight_grad(x, g, w, stride, padding)


conv.defvjp(_conv_fwd, _conv_bwd)


def transposed_size(size: int, kernel: int, stride: int, padding: int) -> int:
  return (size - 1) * stride - 2 * padding + kernel   # PyTorch's ConvTranspose2d output size


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x, w, stride: int, padding: int):
  """Transposed conv: x (N,H,W,Cin), w (k,k,Cout,Cin) is the kernel of the conv it transposes."""
  k = w.shape[0]
  return _grow(x, w, stride, padding, (transposed_size(x.shape[1], k, stride, padding),
                                       transposed_size(x.shape[2], k, stride, padding)))


def _conv_transpose_fwd(x, w, stride, padding):
  return conv_transpose(x, w, stride, padding), (x, w)


def _conv_transpose_bwd(stride, padding, residuals, g):
  x, w = residuals
  return _shrink(g, w, stride, padding), _weight_grad(g, x, w, stride, padding)


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


class Conv(nn.Module):
  """PyTorch-style Conv2d(kernel, stride, padding) in NHWC; parameters named as flax's nn.Conv."""
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: int = 1
  use_bias: bool = False
  kernel_init: nn.initializers.Initializer = DCGAN_INIT

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    w = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
    y = conv(x, jnp.asarray(w, x.dtype), self.stride, self.padding)
    if self.use_bias:
      y = y + jnp.asarray(self.param("bias", nn.initializers.zeros, (self.features,)), x.dtype)
    return y


class ConvTranspose(nn.Module):
  """PyTorch-style ConvTranspose2d(kernel, stride, padding) without bias, in NHWC."""
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: int = 1
  kernel_init: nn.initializers.Initializer = DCGAN_INIT

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    w = self.param("kernel", self.kernel_init, (k, k, self.features, x.shape[-1]))
    return conv_transpose(x, jnp.asarray(w, x.dtype), self.stride, self.padding)


def _bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)   # DCGAN: BN weight from N(1, 0.02)


def normalization(kind: str, train: bool, axis_name: str | None, dtype: str = "float32"):
  """A normalisation layer; BatchNorm averages its statistics over `axis_name` (synced BN)."""
  if kind == "batch":
    # momentum 0.9 and eps 1e-5 are PyTorch's BatchNorm defaults.
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        axis_name=axis_name if train else None, scale_init=_bn_scale_init,
                        dtype=dtype)
  if kind == "layer":
    return nn.LayerNorm(reduction_axes=tuple(range(1, 4)), feature_axes=tuple(range(1, 4)),
                        dtype=dtype)
  return lambda x: x
