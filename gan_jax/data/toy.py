"""2-D mixtures of Gaussians used to measure mode coverage (PacGAN, VEEGAN)."""

import numpy as np


def modes(name: str) -> tuple[np.ndarray, float]:
  """(mode centres (K, 2), standard deviation) of a toy dataset."""
  if name == "ring8":  # 8 modes on the unit circle, sigma 0.01
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01
  if name == "grid25":  # 25 modes at {-4, -2, 0, 2, 4}^2, sigma 0.05
    axis = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2), 0.05
  raise ValueError(f"unknown toy dataset {name!r}")


def sample(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
  """n points (n, 2) float32: a uniformly chosen mode plus Gaussian noise."""
  centres, sigma = modes(name)
  picks = rng.integers(len(centres), size=n)
  return (centres[picks] + sigma * rng.standard_normal((n, 2))).astype(np.float32)
