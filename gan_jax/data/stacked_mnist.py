"""Stacked MNIST (Srivastava et al. 2017; VEEGAN, PacGAN): three digits as the R, G and B channels
of one image, 10^3 = 1,000 modes, each a triple of digits."""

import numpy as np

NUM_MODES = 1000


def stack(digits: np.ndarray, count: int, seed: int) -> np.ndarray:
  """`count` uint8 (28, 28, 3) images, each channel a digit image drawn uniformly (with
  replacement) from `digits` (N, 28, 28, 1), as PacGAN's code builds its training set."""
  picks = np.random.default_rng(seed).integers(len(digits), size=(count, 3))
  return np.moveaxis(digits[picks, ..., 0], 1, -1)


def mode_of(channel_digits: np.ndarray) -> np.ndarray:
  """The mode 0..999 of each image from its channels' digits (N, 3): 100 R + 10 G + B."""
  return channel_digits @ np.array([100, 10, 1])


def mode_coverage(channel_digits: np.ndarray) -> dict:
  """Modes among the images whose channels were read as digits `channel_digits` (N, 3), and
  KL(their mode histogram || uniform over 1,000), PacGAN's Table 2 metrics."""
  histogram = np.bincount(mode_of(channel_digits), minlength=NUM_MODES) / len(channel_digits)
  seen = histogram > 0
  kl = float(np.sum(histogram[seen] * np.log(histogram[seen] * NUM_MODES)))
  return {"modes": int(seen.sum()), "num_modes": NUM_MODES, "mode_kl_to_uniform": kl}
