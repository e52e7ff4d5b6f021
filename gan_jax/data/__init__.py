"""Datasets as functions of the step: the batch of step s depends on (seed, s) alone.

That makes the data position part of the step counter, so a resumed run reads exactly the batches
an uninterrupted run would. Each host loads only its own share of every global batch.
"""

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterator

import ml_collections
import numpy as np

from gan_jax.data import sources, toy


@dataclasses.dataclass
class Dataset:
  """batch(step) -> this host's (n_critic, per_host_batch, *shape) block of that step's batch."""

  shape: tuple[int, ...]
  batch: Callable[[int], np.ndarray]


def load_images(data: ml_collections.ConfigDict) -> np.ndarray:
  if data.source == "tfds":
    images = sources.load_tfds(data.name, data.split, data.data_dir, data.manual_dir, data.download)
  elif data.source == "npz":
    images = sources.load_npz(data.path)
  else:
    images = sources.load_folder(data.path, data.image_size)
  return sources.resize(images, data.image_size) if data.image_size else images


def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(n)


def from_array(
  examples: np.ndarray, seed: int, n_critic: int, global_batch: int, host_start: int, host_size: int
) -> Dataset:
  """Reshuffled every epoch from the seed; epochs run into each other (no example dropped)."""
  n = len(examples)
  per_step = n_critic * global_batch
  orders = {}

  def batch(step: int) -> np.ndarray:
    first = step * per_step
    # this host's slots in each of the n_critic sub-batches
    slots = (
      first
      + np.arange(n_critic)[:, None] * global_batch
      + host_start
      + np.arange(host_size)[None, :]
    ).reshape(-1)
    epochs, positions = np.divmod(slots, n)
    for e in set(epochs.tolist()) - set(orders):
      orders[e] = _epoch_order(seed, e, n)
    for e in [e for e in orders if e < epochs.min()]:
      del orders[e]
    indices = np.array([orders[e][p] for e, p in zip(epochs, positions)])
    return examples[indices].reshape(n_critic, host_size, *examples.shape[1:])

  return Dataset(examples.shape[1:], batch)


def from_toy(
  name: str, seed: int, n_critic: int, global_batch: int, host_start: int, host_size: int
) -> Dataset:
  def batch(step: int) -> np.ndarray:
    points = toy.sample(name, np.random.default_rng([seed, step]), n_critic * global_batch)
    points = points.reshape(n_critic, global_batch, 2)
    return points[:, host_start : host_start + host_size]

  return Dataset((2,), batch)


def create(
  config: ml_collections.ConfigDict,
  host_start: int,
  host_size: int,
  images: np.ndarray | None = None,
) -> Dataset:
  """The config's dataset; `images` (from load_images) saves loading them again."""
  args = (config.seed, config.n_critic, config.train.batch_size, host_start, host_size)
  if config.data.source == "toy":
    return from_toy(config.data.name, *args)
  return from_array(load_images(config.data) if images is None else images, *args)


def toy_modes(data: ml_collections.ConfigDict) -> np.ndarray | None:
  """The mode centres of a 2-D toy dataset, drawn beside its samples; None for images."""
  return toy.modes(data.name)[0] if data.source == "toy" else None


def prefetch(dataset: Dataset, start: int, stop: int, depth: int = 2) -> Iterator[np.ndarray]:
  """Batches start..stop-1, made `depth` steps ahead on a background thread."""
  buffer: queue.Queue = queue.Queue(maxsize=depth)

  def produce():
    try:
      for step in range(start, stop):
        buffer.put(dataset.batch(step))
    except Exception as e:  # handed to the consumer, which re-raises it
      buffer.put(e)

  threading.Thread(target=produce, daemon=True).start()
  for _ in range(start, stop):
    item = buffer.get()
    if isinstance(item, Exception):
      raise item
    yield item
