"""Images between their stored form (uint8 in [0, 255]) and the models' (float32 in [-1, 1])."""

import numpy as np


def to_model_range(images):
  """uint8 images (NumPy or JAX) to float32 in [-1, 1]; float data (2-D toys, samples) as it is."""
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  return images


def to_uint8(samples) -> np.ndarray:
  """Generator outputs in [-1, 1] quantised like real images."""
  return np.clip(np.round((np.asarray(samples) + 1.0) * 127.5), 0, 255).astype(np.uint8)
