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

from gan_jax import UserError
from gan_jax.data import sources, stacked_mnist, toy


@dataclasses.dataclass
class Dataset:
  """batch(step) -> this host's (n_critic, per_host_batch, *shape) block of that step's batch,
  paired with its (n_critic, per_host_batch) labels for a conditional model."""

  shape: tuple[int, ...]
  batch: Callable[[int], np.ndarray | tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Examples:
  images: np.ndarray  # uint8 (N, H, W, C)
  labels: np.ndarray | None = None  # int32 (N,), for conditional models


def load_examples(data: ml_collections.ConfigDict, with_labels: bool = False) -> Examples:
  """The images of data.source (the first data.subset of them), with labels if asked."""
  if data.source == "tfds":
    loaded = sources.load_tfds(
      data.name, data.split, data.data_dir, data.manual_dir, data.download, with_labels
    )
  elif data.source == "stacked_mnist":  # unconditional: config.validate refuses labels
    digits = sources.load_tfds(data.name, data.split, data.data_dir, data.manual_dir, data.download)
    loaded = stacked_mnist.stack(digits, data.stacked_examples, data.stacked_seed)
  elif data.source == "npz":
    loaded = sources.load_npz(data.path, with_labels)
  else:
    loaded = sources.load_folder(data.path, data.image_size, with_labels)
  images, labels = loaded if with_labels else (loaded, None)
  if data.subset:
    images = images[: data.subset]
    labels = None if labels is None else labels[: data.subset]
  images = sources.resize(images, data.image_size) if data.image_size else images
  return Examples(images, labels)


def load_images(data: ml_collections.ConfigDict) -> np.ndarray:
  return load_examples(data).images


def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(n)


def from_array(
  examples: Examples | np.ndarray,
  seed: int,
  n_critic: int,
  global_batch: int,
  host_start: int,
  host_size: int,
  reshuffle: bool = True,
) -> Dataset:
  """Reshuffled every epoch from the seed (or, without `reshuffle`, every epoch in the first
  epoch's order); epochs run into each other (no example dropped). An array of examples is
  unlabelled."""
  if isinstance(examples, np.ndarray):
    examples = Examples(examples)
  images, labels = examples.images, examples.labels
  n = len(images)
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
      orders[e] = _epoch_order(seed, e if reshuffle else 0, n)
    for e in [e for e in orders if e < epochs.min()]:
      del orders[e]
    indices = np.array([orders[e][p] for e, p in zip(epochs, positions)])
    block = images[indices].reshape(n_critic, host_size, *images.shape[1:])
    return block if labels is None else (block, labels[indices].reshape(n_critic, host_size))

  return Dataset(images.shape[1:], batch)


def from_toy(
  name: str,
  seed: int,
  n_critic: int,
  global_batch: int,
  host_start: int,
  host_size: int,
  fixed_set: int = 0,
  pac: int = 1,
) -> Dataset:
  """Fresh samples every step, drawn from (seed, step); or, with `fixed_set`, PacGAN's 2-D
  training set: that many samples drawn once from the seed, and as many packs of `pac` members,
  each member drawn from those samples with replacement, the packs reshuffled every epoch."""
  if fixed_set:
    packs = from_array(
      _toy_packs(name, seed, fixed_set, pac),
      seed,
      n_critic,
      global_batch // pac,
      host_start // pac,
      host_size // pac,
    )
    return Dataset((2,), lambda step: packs.batch(step).reshape(n_critic, host_size, 2))

  def batch(step: int) -> np.ndarray:
    points = toy.sample(name, np.random.default_rng([seed, step]), n_critic * global_batch)
    points = points.reshape(n_critic, global_batch, 2)
    return points[:, host_start : host_start + host_size]

  return Dataset((2,), batch)


def _toy_packs(name: str, seed: int, n: int, pac: int) -> np.ndarray:
  """(n, pac, 2): n packs drawn with replacement from n samples, as PacGAN's
  GaussianPackingMixture builds them (also for pac=1)."""
  # a stream of its own: the fresh-sample batches use default_rng([seed, step])
  rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
  points = toy.sample(name, rng, n)
  return points[rng.integers(n, size=(n, pac))]


def samples_per_batch(config: ml_collections.ConfigDict) -> int:
  """Real examples in each of a step's D batches: train.batch_size packs of `pac` (PacGAN)."""
  return config.train.batch_size * config.pac


def create(
  config: ml_collections.ConfigDict,
  host_start: int,
  host_size: int,
  examples: Examples | np.ndarray | None = None,
) -> Dataset:
  """The config's dataset; `examples` (from load_for) saves loading them again."""
  args = (config.seed, config.n_critic, samples_per_batch(config), host_start, host_size)
  if config.data.source == "toy":
    return from_toy(config.data.name, *args, config.data.toy_examples, config.pac)
  examples = load_for(config) if examples is None else examples
  return from_array(examples, *args, reshuffle=config.data.reshuffle)


def load_for(config: ml_collections.ConfigDict) -> Examples:
  """The examples `config` trains on: with labels, checked against model.num_classes, when
  it is conditional."""
  num_classes = config.model.num_classes
  examples = load_examples(config.data, with_labels=num_classes > 0)
  if num_classes and examples.labels.max() >= num_classes:
    raise UserError(
      f"the data has label {examples.labels.max()}, config.model.num_classes={num_classes} "
      f"allows 0..{num_classes - 1}"
    )
  return examples


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
