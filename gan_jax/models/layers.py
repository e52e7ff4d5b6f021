"""Layers shared by the models.

`Conv` and `ConvTranspose` (PyTorch's Conv2d / ConvTranspose2d semantics, NHWC) are one pair of
linear maps with hand-picked implementations of their three operations, chosen by what XLA:CPU runs
fastest (benchmarks/NOTES.md):
  shrink  big image -> small (a strided conv),
  grow    small -> big (its linear transpose),
  weight  the kernel's gradient,
each the lax convolution, except
  - when the big side has few channels (the 1- or 3-channel image layers): im2col patches and
    matmuls, since lax's weight gradient of such a layer runs ~10x slower than the same matmul;
  - grow and weight of the wider strided layers: the stride-1 form of the same conv over
    space-to-depth blocks of the big side (a dense conv and per-tap matmuls), 1.5-3x faster than
    lax's input-dilated conv and weight gradient.
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


def _conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
  return (size + 2 * padding - kernel) // stride + 1


def transposed_size(size: int, kernel: int, stride: int, padding: int) -> int:
  return (size - 1) * stride - 2 * padding + kernel   # PyTorch's ConvTranspose2d output size


def _patches(big, kernel: int, stride: int, padding: int):
  """im2col: (N, H, W, C) -> (N, Ho, Wo, k*k*C), taps ordered (ky, kx, c) as an HWIO kernel."""
  n, h, w, c = big.shape
  ho, wo = (_conv_size(size, kernel, stride, padding) for size in (h, w))
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


def _blocked(w, stride: int):
  """Whether `_shrink` with this kernel has a stride-1 form over space-to-depth blocks."""
  return stride > 1 and w.shape[0] % stride == 0


def _block_geometry(big_hw, w, stride, padding):
  """Output size of the strided conv and the (padded) big size it reads, in stride x stride blocks."""
  k = w.shape[0]
  out = tuple(_conv_size(size, k, stride, padding) for size in big_hw)
  return out, tuple(o + k // stride - 1 for o in out)


def _to_blocks(big, stride, padding, blocks_hw):
  """Pad (or crop) `big` to the blocks the conv reads, then space-to-depth:
  (N, H, W, C) -> (N, Hb, Wb, stride*stride*C), channels ordered (row offset, column offset, c)."""
  n, h, w, c = big.shape
  (hb, wb), s = blocks_hw, stride
  x = lax.pad(big, jnp.zeros((), big.dtype), [(0, 0, 0), (padding, hb * s - h - padding, 0),
                                              (padding, wb * s - w - padding, 0), (0, 0, 0)])
  return x.reshape(n, hb, s, wb, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, hb, wb, s * s * c)


def _from_blocks(blocks, stride, padding, big_hw):
  """The transpose of `_to_blocks`."""
  n, hb, wb, _ = blocks.shape
  s, (h, w) = stride, big_hw
  x = blocks.reshape(n, hb, wb, s, s, -1).transpose(0, 1, 3, 2, 4, 5).reshape(n, hb * s, wb * s, -1)
  return lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (-padding, h + padding - hb * s, 0),
                                             (-padding, w + padding - wb * s, 0), (0, 0, 0)])


def _kernel_blocks(w, stride):
  """(k, k, Cb, Cs) -> (k/s, k/s, s*s*Cb, Cs): the same conv's kernel over `_to_blocks` input."""
  k, _, cb, cs = w.shape
  kb, s = k // stride, stride
  return w.reshape(kb, s, kb, s, cb, cs).transpose(0, 2, 1, 3, 4, 5).reshape(kb, kb, s * s * cb, cs)


def _kernel_from_blocks(kernel_blocks, stride, big_channels):
  """The inverse of `_kernel_blocks`."""
  kb, _, _, cs = kernel_blocks.shape
  s = stride
  return kernel_blocks.reshape(kb, kb, s, s, big_channels, cs).transpose(0, 2, 1, 3, 4, 5).reshape(
      kb * s, kb * s, big_channels, cs)


def _grow(small, w, stride, padding, big_hw):
  """The transpose of `_shrink`: small (N, Ho, Wo, Cs) -> (N, *big_hw, Cb)."""
  big = jax.ShapeDtypeStruct((small.shape[0], *big_hw, w.shape[2]), small.dtype)
  if w.shape[2] <= FEW_CHANNELS:   # col2im of the kernel's transpose matmul
    columns = small @ w.reshape(-1, w.shape[-1]).T
    (out,) = jax.linear_transpose(lambda b: _patches(b, w.shape[0], stride, padding), big)(columns)
  elif _blocked(w, stride):
    # A stride-1 full convolution into space-to-depth blocks: lax's transpose of a strided conv
    # (an input-dilated conv) runs 2-3x slower on XLA:CPU than this dense one.
    _, blocks_hw = _block_geometry(big_hw, w, stride, padding)
    kb = w.shape[0] // stride
    kernel = jnp.flip(_kernel_blocks(w, stride), (0, 1)).transpose(0, 1, 3, 2)
    blocks = lax.conv_general_dilated(small, kernel, (1, 1), [(kb - 1, kb - 1)] * 2,
                                      dimension_numbers=_DIMS)
    out = _from_blocks(blocks, stride, padding, big_hw)
  else:
    (out,) = jax.linear_transpose(lambda b: _shrink(b, w, stride, padding), big)(small)
  return out


def _weight_grad(big, small_grad, w, stride, padding):
  """The gradient of <_shrink(big, w), small_grad> with respect to w (a ShapeDtypeStruct)."""
  if big.shape[-1] <= FEW_CHANNELS:
    cols = _patches(big, w.shape[0], stride, padding)
    return (cols.reshape(-1, cols.shape[-1]).T @ small_grad.reshape(-1, w.shape[-1])).reshape(w.shape)
  if _blocked(w, stride):
    # One matmul per block tap (gradient^T @ shifted blocks): 1.5x faster than lax's weight
    # gradient on the 32x32 layer, as fast elsewhere.
    (ho, wo), blocks_hw = _block_geometry(big.shape[1:3], w, stride, padding)
    blocks = _to_blocks(big, stride, padding, blocks_hw)
    grad_t = small_grad.reshape(-1, w.shape[-1]).T
    kb = w.shape[0] // stride
    taps = jnp.stack([grad_t @ blocks[:, dy:dy + ho, dx:dx + wo].reshape(-1, blocks.shape[-1])
                      for dy in range(kb) for dx in range(kb)])
    kernel_blocks = taps.reshape(kb, kb, *taps.shape[1:]).transpose(0, 1, 3, 2)
    return _kernel_from_blocks(kernel_blocks, stride, w.shape[2])
  (out,) = jax.linear_transpose(lambda w_: _shrink(big, w_, stride, padding), w)(small_grad)
  return out


# The three operations as one family closed under differentiation: each one's gradient is made of
# the other two, so second-order terms (WGAN-GP, R1) run the same fast kernels, not autodiff of
# their insides.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x, w, stride: int, padding: int):
  """Conv2d without bias: x (N, H, W, Cin), w (k, k, Cin, Cout)."""
  return _shrink(x, w, stride, padding)


def _conv_fwd(x, w, stride, padding):
  return conv(x, w, stride, padding), (x, w)


def _conv_bwd(stride, padding, residuals, g):
  x, w = residuals
  return (_grow_op(g, w, stride, padding, x.shape[1:3]),
          _weight_op(x, g, stride, padding, w.shape[0]))


conv.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _grow_op(small, w, stride: int, padding: int, big_hw: tuple[int, int]):
  return _grow(small, w, stride, padding, big_hw)


def _grow_fwd(small, w, stride, padding, big_hw):
  return _grow_op(small, w, stride, padding, big_hw), (small, w)


def _grow_bwd(stride, padding, big_hw, residuals, g):
  small, w = residuals
  return conv(g, w, stride, padding), _weight_op(g, small, stride, padding, w.shape[0])


_grow_op.defvjp(_grow_fwd, _grow_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _weight_op(big, small_grad, stride: int, padding: int, kernel: int):
  w = jax.ShapeDtypeStruct((kernel, kernel, big.shape[-1], small_grad.shape[-1]), big.dtype)
  return _weight_grad(big, small_grad, w, stride, padding)


def _weight_fwd(big, small_grad, stride, padding, kernel):
  return _weight_op(big, small_grad, stride, padding, kernel), (big, small_grad)


def _weight_bwd(stride, padding, kernel, residuals, w_grad):
  big, small_grad = residuals
  return (_grow_op(small_grad, w_grad, stride, padding, big.shape[1:3]),
          conv(big, w_grad, stride, padding))


_weight_op.defvjp(_weight_fwd, _weight_bwd)


def conv_transpose(x, w, stride: int, padding: int):
  """Transposed conv: x (N,H,W,Cin), w (k,k,Cout,Cin) is the kernel of the conv it transposes."""
  k = w.shape[0]
  return _grow_op(x, w, stride, padding, (transposed_size(x.shape[1], k, stride, padding),
                                          transposed_size(x.shape[2], k, stride, padding)))


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
