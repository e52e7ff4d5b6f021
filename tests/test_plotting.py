"""The run's pictures show what they were drawn for."""

import numpy as np

from gan_jax import plotting
from gan_jax.data import toy


def test_the_scatter_plot_legend_covers_no_mode(tmp_path, monkeypatch):
  """Inside the axes, the legend hid the grid's corner mode (4, 4) and the samples on it."""
  figures = []
  monkeypatch.setattr(plotting.plt, "close", figures.append)
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
  monkeypatch.undo()
  plotting.plt.close("all")
