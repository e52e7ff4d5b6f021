"""The run's pictures show what they were drawn for."""

import numpy as np
import pytest

from gan_jax import plotting, ranking
from gan_jax.data import toy


@pytest.fixture
def figures(monkeypatch):
  """The figures the pictures were drawn on, kept open until the test ends."""
  kept = []
  monkeypatch.setattr(plotting.plt, "close", kept.append)
  yield kept
  monkeypatch.undo()
  plotting.plt.close("all")


def test_the_scatter_plot_legend_covers_no_mode(tmp_path, figures):
  """Inside the axes, the legend hid the grid's corner mode (4, 4) and the samples on it."""
  for name in ("grid25", "ring8"):
    centres = toy.modes(name)[0]
    points = toy.sample(name, np.random.default_rng(0), 2500)
    plotting.save_samples(points, str(tmp_path / f"{name}.png"), centres)
    fig = figures.pop()
    (ax,) = fig.axes
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent()), name
    assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_the_sweep_picture_ticks_the_swept_values(tmp_path, figures):
  curves = {f"trial_{i}": [{"step": 1, "d_loss": 1.0, "g_loss": 1.0}] for i in range(8)}
  groups = [
    ranking.Setting(
      {"pac": pac, "lr": lr},
      [f"trial_{2 * i + j}" for j in range(2)],
      [{"modes": 20.0 + pac}, {"modes": 21.0 + pac}],
    )
    for i, (pac, lr) in enumerate([(1, 1e-4), (2, 1e-4), (3, 1e-3), (4, 1e-3)])
  ]
  plotting.save_sweep(groups, "modes", curves, str(tmp_path / "sweep.png"))
  (fig,) = figures
  labels = lambda ax: [t.get_text() for t in ax.get_xticklabels()]
  assert [ax.get_xlabel() for ax in fig.axes[:2]] == ["lr", "pac"]
  assert labels(fig.axes[0]) == ["0.0001", "0.001"]
  assert labels(fig.axes[1]) == ["1", "2", "3", "4"]
