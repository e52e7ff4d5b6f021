"""python -m gan_jax.classifier --dataset=mnist --workdir=runs/mnist_classifier \\
    --manual_dir=../shared/data/mnist [--data_dir=...] [--epochs=3]

Trains gan_jax.metrics.classifier's CNN on a tfds dataset's train split and writes
WORKDIR/classifier.msgpack and WORKDIR/classifier.json (dataset, test accuracy, sha256).
"""

import sys

from absl import app, flags, logging

from gan_jax import UserError
from gan_jax.cli import fail, parse_flags

_DATASET = flags.DEFINE_string("dataset", "mnist", "tfds dataset with 'image' and 'label' features")
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
  from gan_jax.data import sources  # after flag parsing, as every command
  from gan_jax.metrics import classifier

  load = lambda split: sources.load_tfds(
    _DATASET.value, split, _DATA_DIR.value, _MANUAL_DIR.value, with_labels=True
  )
  try:
    train, test = load("train"), load("test")
  except UserError as e:
    fail(str(e))
  params, accuracy = classifier.train_classifier(
    *train, *test, epochs=_EPOCHS.value, seed=_SEED.value
  )
  info = classifier.save(
    _WORKDIR.value,
    params,
    {
      "dataset": _DATASET.value,
      "train_split": "train",
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


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
