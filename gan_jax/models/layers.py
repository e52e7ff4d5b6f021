"""Layers shared by the models.

`Conv` and `ConvTranspose` (PyTorch's Conv2d / ConvTranspose2d semantics, NHWC) are one pair of
linear maps with hand-picked implementations of their three operations, chosen by what XLA:CPU runs
fastest (benchmarks/NOTES.md has the measurements):
  shrink  big image -> small (a strided conv),
  grow    small -> big (its linear transpose),
  weight  the kernel's gradient,
each the lax convolution, except grow of the strided layers:
  - with few channels on the big side (the 1- or 3-channel image layers): the kernel's transpose
    matmul, then col2im (the transpose of im2col patches), faster than the alternatives below;
  - otherwise, where the kernel is a multiple of the stride: one dense conv per output phase
    (`_grow_by_phases`), faster than lax's input-dilated conv. At stride 1 that is the one conv
    with the flipped kernel, in the standard dimension numbers: lax's transpose swaps the kernel's
    feature axes, which XLA:CPU runs with a generic, ~2x slower loop inside a loop body (the
    critic scan).
On CPU the train step is compiled with XLA's Eigen convolutions rather than YNNPACK's
(`cpu.COMPILER_OPTIONS`), which run these shapes faster.
A Conv runs shrink forward and grow + weight backward; a ConvTranspose grow forward and shrink +
weight backward. `lax.conv_transpose` (flax's ConvTranspose) is never used: XLA:CPU computes its
weight gradient with a generic loop.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DCGAN_INIT = nn.initializers.normal(0.02)  # Radford et al.: weights from N(0, 0.02)
_DIMS = ("NHWC", "HWIO", "NHWC")
FEW_CHANNELS = 4  # up to this many channels on the big side, grow is col2im


def transposed_size(size: int, kernel: int, stride: int, padding: int) -> int:
  return (size - 1) * stride - 2 * padding + kernel  # PyTorch's ConvTranspose2d output size


def patches(big, kernel: int, stride: int, padding: int):
  """im2col: (N, H, W, C) -> (N, Ho, Wo, k*k*C), taps ordered (ky, kx, c) as an HWIO kernel."""
  n, h, w, c = big.shape
  ho, wo = ((size + 2 * padding - kernel) // stride + 1 for size in (h, w))
  padded = jnp.pad(big, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  taps = [
    lax.slice(
      padded,
      (0, ky, kx, 0),
      (n, ky + stride * (ho - 1) + 1, kx + stride * (wo - 1) + 1, c),
      (1, stride, stride, 1),
    )
    for ky in range(kernel)
    for kx in range(kernel)
  ]
  return jnp.concatenate(taps, axis=-1)


def _shrink(big, w, stride, padding):
  """The strided conv: big (N, H, W, Cb), w (k, k, Cb, Cs) -> (N, Ho, Wo, Cs)."""
  return lax.conv_general_dilated(
    big, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=_DIMS
  )


def _has_phases(w, stride: int):
  """Whether `_grow` with this kernel splits into stride * stride dense convs
  (`_grow_by_phases`); at stride 1, the one conv with the flipped kernel."""
  return w.shape[0] % stride == 0


def _grow(small, w, stride, padding, big_hw):
  """The transpose of `_shrink`: small (N, Ho, Wo, Cs) -> (N, *big_hw, Cb)."""
  big = jax.ShapeDtypeStruct((small.shape[0], *big_hw, w.shape[2]), small.dtype)
  if w.shape[2] <= FEW_CHANNELS:  # col2im of the kernel's transpose matmul
    columns = small @ w.reshape(-1, w.shape[-1]).T
    (out,) = jax.linear_transpose(lambda b: patches(b, w.shape[0], stride, padding), big)(columns)
  elif _has_phases(w, stride):
    out = _grow_by_phases(small, w, stride, padding, big_hw)
  else:
    (out,) = jax.linear_transpose(lambda b: _shrink(b, w, stride, padding), big)(small)
  return out


def _grow_by_phases(small, w, stride, padding, big_hw):
  """`_grow` as stride * stride dense convs, one per output phase (sub-pixel position).

  Big-side pixel s*m + a only meets the kernel taps congruent to a + padding (mod s), so each
  phase is a stride-1 conv of `small` with a (k/s x k/s) slice of the kernel; the phases are then
  interleaved. lax's transpose, an input-dilated conv, spends 3/4 of its work on inserted zeros
  and runs slower on XLA:CPU.
  """
  s, kb = stride, w.shape[0] // stride
  n, h, wd, _ = small.shape
  rows, cols = (-(-size // s) for size in big_hw)  # each phase's output size, rounded up

  def taps(phase):  # along one axis: the phase's first kernel tap and its shift into `small`
    return (phase + padding) % s, (phase + padding) // s

  phases = []
  for a in range(s):
    for b in range(s):
      (tap_a, shift_a), (tap_b, shift_b) = taps(a), taps(b)
      kernel = jnp.flip(w[tap_a::s, tap_b::s], (0, 1)).transpose(0, 1, 3, 2)  # (k/s, k/s, Cs, Cb)
      pads = [
        (kb - 1 - shift, out - size + shift)
        for shift, out, size in ((shift_a, rows, h), (shift_b, cols, wd))
      ]
      phases.append(lax.conv_general_dilated(small, kernel, (1, 1), pads, dimension_numbers=_DIMS))
  out = jnp.stack(phases, axis=3).reshape(n, rows, cols, s, s, -1).transpose(0, 1, 3, 2, 4, 5)
  return out.reshape(n, rows * s, cols * s, -1)[:, : big_hw[0], : big_hw[1]]


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
  return (
    _grow_op(g, w, stride, padding, x.shape[1:3]),
    _weight_op(x, g, stride, padding, w.shape[0]),
  )


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
  """The gradient of <_shrink(big, w), small_grad> with respect to w, a (kernel x kernel) kernel.

  The correlation of `big` with the dilated `small_grad`, written with the batch as the contracted
  feature axis and standard dimension numbers. lax's own transpose rule gives the same conv with
  permuted dimension numbers, which XLA:CPU turns into this form in straight-line code but not in
  a loop body (the critic scan), where it falls back to a much slower generic conv loop.
  """
  (_, h, wd, _), (_, ho, wo, _) = big.shape, small_grad.shape
  pads = [(padding, kernel + (o - 1) * stride - size - padding) for o, size in ((ho, h), (wo, wd))]
  out = lax.conv_general_dilated(
    big.transpose(3, 1, 2, 0),
    small_grad.transpose(1, 2, 0, 3),
    (1, 1),
    pads,
    rhs_dilation=(stride, stride),
    dimension_numbers=_DIMS,
  )
  return out.transpose(1, 2, 0, 3)  # (Cb, k, k, Cs) -> (k, k, Cb, Cs)


def _weight_fwd(big, small_grad, stride, padding, kernel):
  return _weight_op(big, small_grad, stride, padding, kernel), (big, small_grad)


def _weight_bwd(stride, padding, kernel, residuals, w_grad):
  big, small_grad = residuals
  return (
    _grow_op(small_grad, w_grad, stride, padding, big.shape[1:3]),
    conv(big, w_grad, stride, padding),
  )


_weight_op.defvjp(_weight_fwd, _weight_bwd)


def conv_transpose(x, w, stride: int, padding: int, size: tuple[int, int] | None = None):
  """Transposed conv: x (N,H,W,Cin), w (k,k,Cout,Cin) is the kernel of the conv it transposes.
  `size`: the output's (H, W), any that the conv maps to x's; PyTorch's smallest by default."""
  k = w.shape[0]
  if size is None:
    size = tuple(transposed_size(x.shape[i], k, stride, padding) for i in (1, 2))
  return _grow_op(x, w, stride, padding, tuple(size))


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
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)  # DCGAN: BN weight from N(1, 0.02)


BN_MOMENTUM = 0.9  # with eps 1e-5, PyTorch's BatchNorm defaults


def normalization(
  kind: str,
  train: bool,
  axis_name: str | None,
  dtype: str = "float32",
  scale_init: nn.initializers.Initializer = _bn_scale_init,
):
  """A normalisation layer; BatchNorm averages its statistics over `axis_name` (synced BN)."""
  if kind == "batch":
    return nn.BatchNorm(
      use_running_average=not train,
      momentum=BN_MOMENTUM,
      epsilon=1e-5,
      axis_name=axis_name if train else None,
      scale_init=scale_init,
      dtype=dtype,
    )
  if kind == "layer":
    return nn.LayerNorm(
      reduction_axes=tuple(range(1, 4)), feature_axes=tuple(range(1, 4)), dtype=dtype
    )
  return lambda x: x


SPECTRAL = "spectral"  # the variable collection of spectral norm's power-iteration vectors


def spectral_norm(layer: nn.Module, enabled: bool, train: bool):
  """`layer` with each weight matrix divided by its largest singular value (Miyato et al. 2018).

  flax's SpectralNorm wraps any layer, the custom Conv / ConvTranspose included: it rewrites the
  layer's parameters on the way in. A kernel is the matrix (-1, out_features) (for
  ConvTranspose: the matrix of the conv it transposes). Each train-mode call runs one power
  iteration and stores its `u` in the SPECTRAL collection, as PyTorch's spectral_norm does per
  training forward; outside training `u` is read, never written.
  """
  if not enabled:
    return layer
  return functools.partial(nn.SpectralNorm(layer, collection_name=SPECTRAL), update_stats=train)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose gain and bias are looked up per class (de Vries et al. 2017; SNGAN's cGAN)."""

  num_classes: int
  train: bool
  axis_name: str | None = None
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, labels):
    x = nn.BatchNorm(
      use_running_average=not self.train,
      momentum=BN_MOMENTUM,
      epsilon=1e-5,
      axis_name=self.axis_name if self.train else None,
      use_scale=False,
      use_bias=False,
      dtype=self.dtype,
    )(x)
    features = x.shape[-1]
    gain = nn.Embed(self.num_classes, features, embedding_init=_bn_scale_init, name="gain")
    bias = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.zeros, name="bias")
    per_class = lambda e: jnp.asarray(e(labels), x.dtype).reshape(len(x), *[1] * (x.ndim - 2), -1)
    return x * per_class(gain) + per_class(bias)


def generator_norm(kind: str, train: bool, axis_name, dtype, labels=None, num_classes: int = 0):
  """G's normalisation as a function of the activations: per-class BatchNorm when conditional."""
  if num_classes:
    return lambda x: ConditionalBatchNorm(num_classes, train, axis_name, dtype)(x, labels)
  return lambda x: normalization(kind, train, axis_name, dtype)(x)


def discriminator_output(
  features,
  labels,
  num_classes: int,
  conditioning: str,
  sn: bool,
  train: bool,
  dtype,
  kernel_init: nn.initializers.Initializer = DCGAN_INIT,
  use_bias: bool = True,
):
  """D's last layer on its (N, F) features: the logit (N,) as float32. Conditional on `labels`:
  plus the projection <embed(y), features> (Miyato and Koyama 2018), or for ACGAN the pair
  (logit, class logits (N, num_classes)) (Odena et al. 2017).

  Called inside the discriminator's compact method, so its layers are the discriminator's own.
  """
  dense = lambda n: spectral_norm(
    nn.Dense(n, use_bias=use_bias, kernel_init=kernel_init, dtype=dtype), sn, train
  )
  logits = dense(1)(features)[:, 0].astype(jnp.float32)
  if not num_classes:
    return logits
  if conditioning == "acgan":
    return logits, dense(num_classes)(features).astype(jnp.float32)
  embed = nn.Embed(
    num_classes, features.shape[-1], embedding_init=nn.initializers.xavier_uniform(), dtype=dtype
  )
  projection = jnp.sum(spectral_norm(embed, sn, train)(labels) * features, axis=-1)
  return logits + projection.astype(jnp.float32)
