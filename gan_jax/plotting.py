"""Pictures of a run: sample grids, 2-D scatter plots and loss curves (matplotlib, no display)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax.pixels import to_uint8  # noqa: E402


def image_grid(images: np.ndarray, cols: int = 0) -> np.ndarray:
  """(N, H, W, C) in [-1, 1] -> one uint8 (rows*H, cols*W, C) picture with 1-pixel gaps; a square
  grid unless `cols` is given."""
  n, h, w, c = images.shape
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 255, np.uint8)
  pixels = to_uint8(images)
  for i, image in enumerate(pixels):
    r, q = divmod(i, cols)
    grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = image
  return grid


def save_samples(
  samples: np.ndarray, path: str, modes: np.ndarray | None = None, cols: int = 0
) -> None:
  """Images as a grid PNG (`cols` wide); 2-D points as a scatter plot (with the true modes when
  known)."""
  if samples.ndim == 4:
    grid = image_grid(samples, cols)
    plt.imsave(path, grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
    return
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, label="samples")
  if modes is not None:
    ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="red", label="modes")
  ax.set_aspect("equal")
  ax.legend(loc="upper right")
  fig.savefig(path, dpi=100)
  plt.close(fig)


def save_curves(records: list[dict], path: str, keys=("d_loss", "g_loss")) -> None:
  """Loss curves from metrics.jsonl records."""
  fig, ax = plt.subplots(figsize=(7, 4))
  steps = [r["step"] for r in records]
  for key in keys:
    ax.plot(steps, [r.get(key, np.nan) for r in records], label=key, lw=1)
  ax.set_xlabel("step")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def save_overlay(curves: dict[str, list[dict]], path: str, keys=("d_loss", "g_loss")) -> None:
  """Several runs' curves in one picture, one panel per metric."""
  fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False)
  for ax, key in zip(axes[0], keys):
    for name, records in curves.items():
      ax.plot([r["step"] for r in records], [r.get(key, np.nan) for r in records], lw=1, label=name)
    ax.set_title(key)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  if len(curves) <= 16:
    axes[0][-1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
