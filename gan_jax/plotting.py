"""Pictures of a run: sample grids, 2-D scatter plots and loss curves (matplotlib, no display)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax.pixels import to_uint8  # noqa: E402

# zlib's fastest level: a run's pictures are drawn while its training waits, and this saves 25-30 ms
# a picture for files 40% larger
_PNG = dict(pil_kwargs={"compress_level": 1})


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
    pixels = grid[..., 0] if grid.shape[-1] == 1 else grid
    plt.imsave(path, pixels, cmap="gray", vmin=0, vmax=255, **_PNG)
    return
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, label="samples")
  if modes is not None:
    ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="red", label="modes")
  ax.set_aspect("equal")
  # above the axes: inside, it covered the corner mode of the grid
  ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, markerscale=3)
  fig.savefig(path, dpi=100, **_PNG)
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
  fig.savefig(path, dpi=100, **_PNG)
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
  _finish(fig, axes, path, len(curves) <= 16, fontsize=7)


def _colour(i: int, n: int):
  return plt.get_cmap("tab10")(i) if n <= 10 else plt.get_cmap("viridis")(i / (n - 1))


def save_sweep(
  groups, metric: str, curves: dict[str, list[dict]], path: str, keys=("d_loss", "g_loss")
) -> None:
  """A sweep in one picture. For each swept hyperparameter, `metric` against its values: each
  setting's seeds as dots, their mean with the standard error. Then the loss curves coloured by
  setting, one thin line per seed. `groups` are ranking.Setting; the legend names them."""
  fields = sorted({k for g in groups for k in g.overrides}) if metric else []
  panels = len(fields) + len(keys)
  fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4), squeeze=False)
  n = len(groups)
  for ax, field in zip(axes[0], fields):
    values = [g.overrides[field] for g in groups if field in g.overrides]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ticks = sorted(set(values), key=str) if not numeric else None
    for i, g in enumerate(groups):
      seeds = g.metric(metric)
      if field not in g.overrides or not seeds.size:
        continue
      x = g.overrides[field] if numeric else ticks.index(g.overrides[field])
      error = seeds.std(ddof=1) / math.sqrt(seeds.size) if seeds.size > 1 else 0.0
      ax.scatter([x] * seeds.size, seeds, s=8, color=_colour(i, n), alpha=0.4)
      ax.errorbar(x, seeds.mean(), yerr=error, fmt="o", color=_colour(i, n), capsize=3)
    if numeric and min(values) > 0 and max(values) >= 10 * min(values):
      ax.set_xscale("log")
    if ticks is not None:
      ax.set_xticks(range(len(ticks)), [str(t) for t in ticks])
    elif len(set(values)) <= 12:  # a tick at each value: pac 1..4, not 1.0, 1.5, ...
      ax.set_xticks(sorted(set(values)), [f"{v:g}" for v in sorted(set(values))])
      ax.minorticks_off()
    ax.set_xlabel(field)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  for ax, key in zip(axes[0][len(fields) :], keys):
    for i, g in enumerate(groups):
      for j, trial in enumerate(g.trials):
        records = [r for r in curves[trial] if key in r]
        label = g.label() if j == 0 else None
        steps = [r["step"] for r in records]
        ax.plot(steps, [r[key] for r in records], lw=0.7, color=_colour(i, n), label=label)
    ax.set_title(key)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  _finish(fig, axes, path, n <= 20)


def save_lineage(lineage: list[dict], names: list[str], trials: list[dict], path: str) -> None:
  """Population-based training's lineage: each perturbed number of each trial over the steps, a
  dot where the trial copied another (dashed from the donor's value just before)."""
  fields = sorted({k for e in lineage for k in e} - {"step", "trial", "from"})
  fig, axes = plt.subplots(1, len(fields), figsize=(6 * len(fields), 4), squeeze=False)
  end = max(e["step"] for e in lineage)
  for ax, field in zip(axes[0], fields):
    value = {n: t.get(field) for n, t in zip(names, trials)}
    history = {n: [(0, value[n])] for n in names}
    for e in lineage:
      ax.plot([e["step"]] * 2, [value[e["from"]], e[field]], ls="--", lw=0.5, c="grey")
      value[e["trial"]] = e[field]
      history[e["trial"]].append((e["step"], e[field]))
      ax.scatter([e["step"]], [e[field]], s=10, color=_colour(names.index(e["trial"]), len(names)))
    for i, n in enumerate(names):
      steps, values = zip(*history[n], (end, history[n][-1][1]))
      ax.step(steps, values, where="post", lw=1, color=_colour(i, len(names)), label=n)
    if all(v and v > 0 for v in value.values()):
      ax.set_yscale("log")
    ax.set_title(field)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  _finish(fig, axes, path, len(names) <= 20)


def _finish(fig, axes, path: str, legend: bool, fontsize: int = 6) -> None:
  """Label the last panel (when the legend would be readable) and write the figure."""
  if legend:
    axes[0][-1].legend(fontsize=fontsize)
  fig.tight_layout()
  fig.savefig(path, dpi=100, **_PNG)
  plt.close(fig)
