"""python -m gan_jax.classifier --dataset=mnist --workdir=runs/mnist_classifier \\
    --manual_dir=../shared/data/mnist [--data_dir=...] [--epochs=3]
python -m gan_jax.classifier --path=cifar10.npz --workdir=runs/cifar10_classifier \\
    [--test_examples=1000] [--epochs=20]

Trains gan_jax.metrics.classifier's CNN on a tfds dataset's train split, or on labelled data of
your own (an .npz of 'images' and 'labels', or a folder of class subfolders of PNGs) of which
--test_examples, chosen at random from the seed, are held out to measure it. Writes
WORKDIR/classifier.msgpack and WORKDIR/classifier.json (dataset, test accuracy, sha256).
"""

import os
import sys

import numpy as np
from absl import flags, logging

from gan_jax import UserError
from gan_jax.cli import fail, run

_DATASET = flags.DEFINE_string("dataset", "mnist", "tfds dataset with 'image' and 'label' features")
_PATH = flags.DEFINE_string(
  "path", "", "labelled data instead of --dataset: an .npz or a folder of class subfolders of PNGs"
)
_TEST_EXAMPLES = flags.DEFINE_integer(
  "test_examples", 1000, "with --path: how many examples are held out to measure the accuracy"
)
_WORKDIR = flags.DEFINE_string("workdir", None, "where the classifier is written")
_MANUAL_DIR = flags.DEFINE_string(
  "manual_dir", "", "folder with the dataset's original files (offline)"
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "tfds data dir")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "training epochs")
_SEED = flags.DEFINE_integer("seed", 0, "seed")


def main(argv: list[str]) -> None:
  if len(argv) > 1 or not _WORKDIR.value:
    fail("usage: python -m gan_jax.classifier --dataset=mnist --workdir=DIR [--manual_dir=DIR]")
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  from gan_jax import compile_cache  # after flag parsing, as every command
  from gan_jax.data import sources
  from gan_jax.metrics import classifier

  compile_cache.enable()
  try:
    if _PATH.value:
      (train, test), origin = _held_out(_own_data(sources), _TEST_EXAMPLES.value), _PATH.value
      train_split = f"all but {len(test[0])} held out (seed {_SEED.value})"
    else:
      load = lambda split: sources.load_tfds(
        _DATASET.value, split, _DATA_DIR.value, _MANUAL_DIR.value, with_labels=True
      )
      train, test = load("train"), load("test")
      origin, train_split = _DATASET.value, "train"
  except UserError as e:
    fail(str(e))
  params, accuracy = classifier.train_classifier(
    *train, *test, epochs=_EPOCHS.value, seed=_SEED.value
  )
  info = classifier.save(
    _WORKDIR.value,
    params,
    {
      "dataset": origin,
      "train_split": train_split,
      "test_accuracy": accuracy,
      "num_classes": int(train[1].max()) + 1,
      "image_shape": list(train[0].shape[1:]),
      "epochs": _EPOCHS.value,
      "seed": _SEED.value,
    },
  )
  print(
    f"test accuracy {accuracy:.4f}; wrote {_WORKDIR.value}/classifier.msgpack "
    f"(sha256 {info['sha256'][:12]})",
    file=sys.stdout,
  )


def _own_data(sources) -> tuple[np.ndarray, np.ndarray]:
  load = sources.load_folder if os.path.isdir(_PATH.value) else sources.load_npz
  return load(_PATH.value, with_labels=True, setting="--path")


def _held_out(examples: tuple[np.ndarray, np.ndarray], count: int):
  """((train images, labels), (test images, labels)): `count` examples drawn from the seed are
  the test set."""
  images, labels = examples
  if not 0 < count < len(images):
    raise UserError(
      f"--test_examples={count}: hold out between 1 and {len(images) - 1} of the "
      f"{len(images)} examples"
    )
  order = np.random.default_rng(_SEED.value).permutation(len(images))
  test, train = order[:count], order[count:]
  return (images[train], labels[train]), (images[test], labels[test])


if __name__ == "__main__":
  run(main)
