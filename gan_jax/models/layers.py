"""Layers shared by the models.

`ConvTranspose` has PyTorch's ConvTranspose2d semantics and is defined as the linear transpose of a
strided convolution. Its custom VJP uses ordinary convolutions only: on XLA:CPU the weight gradient
of `lax.conv_transpose` (what `flax.linen.ConvTranspose` runs) takes a generic loop 2-5x slower.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DCGAN_INIT = nn.initializers.normal(0.02)   # Radford et al.: weights from N(0, 0.02)
_DIMS = ("NHWC", "HWIO", "NHWC")


def _conv(u, w, stride: int, padding: int):
  return lax.conv_general_dilated(u, w, (stride, stride), [(padding, padding)] * 2,
                                  dimension_numbers=_DIMS)


def _transpose_of_conv(x, w, stride, padding):
  n, h, wd, _ = x.shape
  k = w.shape[0]
  out = jax.ShapeDtypeStruct((n, (h - 1) * stride - 2 * padding + k,
                              (wd - 1) * stride - 2 * padding + k, w.shape[2]), x.dtype)
  (y,) = jax.linear_transpose(lambda u: _conv(u, w, stride, padding), out)(x)
  return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x, w, stride: int, padding: int):
  """Transposed conv: x (N,H,W,Cin), w (k,k,Cout,Cin) is the kernel of the conv it transposes."""
  return _transpose_of_conv(x, w, stride, padding)


def _conv_transpose_fwd(x, w, stride, padding):
  return _transpose_of_conv(x, w, stride, padding), (x, w)


def _conv_transpose_bwd(stride, padding, residuals, g):
  x, w = residuals
  dx = _conv(g, w, stride, padding)
  # <conv(g, w), x> is the forward pairing, so dw is the weight gradient of that ordinary conv.
  _, weight_vjp = jax.vjp(lambda w_: _conv(g, w_, stride, padding), w)
  (dw,) = weight_vjp(x)
  return dx, dw


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


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


def normalization(kind: str, train: bool, axis_name: str | None):
  """A normalisation layer; BatchNorm averages its statistics over `axis_name` (synced BN)."""
  if kind == "batch":
    # momentum 0.9 and eps 1e-5 are PyTorch's BatchNorm defaults.
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        axis_name=axis_name if train else None, scale_init=_bn_scale_init)
  if kind == "layer":
    return nn.LayerNorm(reduction_axes=tuple(range(1, 4)), feature_axes=tuple(range(1, 4)))
  return lambda x: x
