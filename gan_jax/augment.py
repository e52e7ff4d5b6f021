"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every batch D sees, real and
generated, so that G's gradient flows through them.

The ops follow the authors' `DiffAugment_pytorch.py` on images in [-1, 1]: color (brightness,
saturation, contrast), translation by up to 1/8 of the size with zero padding, and cutout of a
square half the size. Their random numbers are drawn apart from the ops (`draw`) so that the
train step can draw them for the global batch and slice its device's share, as it does the noise.
"""

import jax
import jax.numpy as jnp


def _shift(size: int) -> int:
  return int(size * 0.125 + 0.5)


def _cutout_size(size: int) -> int:
  return int(size * 0.5 + 0.5)


def draw(
  ops: tuple[str, ...], key: jax.Array, batch: tuple[int, ...], size: tuple[int, int]
) -> dict:
  """The random numbers of `ops` for images of `size` (H, W) in batches of shape `batch`."""
  keys = iter(jax.random.split(key, 7))
  params = {}
  if "color" in ops:
    for name in ("brightness", "saturation", "contrast"):
      params[name] = jax.random.uniform(next(keys), batch)
  offsets = lambda low, high: jnp.stack(
    [jax.random.randint(next(keys), batch, low(n), high(n)) for n in size], axis=-1
  )
  if "translation" in ops:
    params["translation"] = offsets(lambda n: -_shift(n), lambda n: _shift(n) + 1)
  if "cutout" in ops:
    params["cutout"] = offsets(lambda n: 0, lambda n: n + 1 - _cutout_size(n) % 2)
  return params


def apply(ops: tuple[str, ...], x, params: dict):
  """`ops` in the paper's order on images x (N, H, W, C) with the numbers from `draw`."""
  per_image = lambda v: v.reshape(-1, 1, 1, 1).astype(x.dtype)
  if "color" in ops:
    x = x + (per_image(params["brightness"]) - 0.5)
    mean = x.mean(axis=-1, keepdims=True)
    x = (x - mean) * (per_image(params["saturation"]) * 2) + mean
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * (per_image(params["contrast"]) + 0.5) + mean
  if "translation" in ops:
    x = _translate(x, params["translation"])
  if "cutout" in ops:
    x = x * _cutout_mask(x.shape, params["cutout"]).astype(x.dtype)
  return x


def _translate(x, offsets):
  """out[i, r, c] = x[i, r + dy, c + dx], zero outside the image."""
  n, h, w, _ = x.shape
  rows = jnp.arange(h)[None, :] + offsets[:, :1]  # (N, H)
  cols = jnp.arange(w)[None, :] + offsets[:, 1:]  # (N, W)
  inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
  gathered = jax.vmap(lambda im, r, c: im[jnp.clip(r, 0, h - 1)][:, jnp.clip(c, 0, w - 1)])(
    x, rows, cols
  )
  return gathered * inside[..., None].astype(x.dtype)


def _cutout_mask(shape, offsets):
  """0 on a (H/2 x W/2) square centred at each image's offset (clipped to the image), else 1."""
  _, h, w, _ = shape

  def outside(size, offset):  # (N, size): whether each row (column) is outside the square
    first = offset[:, None] - _cutout_size(size) // 2
    index = jnp.arange(size)[None, :]
    return (index < first) | (index >= first + _cutout_size(size))

  mask = outside(h, offsets[:, 0])[:, :, None] | outside(w, offsets[:, 1])[:, None, :]
  return mask[..., None]
