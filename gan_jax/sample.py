"""python -m gan_jax.sample --workdir=runs/x --num=64 --out=grid.png   (or --out=samples.npy)

A .png is a picture (a grid of images, or a scatter plot of 2-D samples); a .npy holds the raw
generator outputs, float32, images in [-1, 1] as (N, H, W, C)."""

import os
import sys

from absl import flags, logging

from gan_jax import UserError
from gan_jax.cli import fail, run

_WORKDIR = flags.DEFINE_string("workdir", None, "run directory written by gan_jax.main")
_NUM = flags.DEFINE_integer("num", 64, "number of samples")
_OUT = flags.DEFINE_string("out", "samples.png", "output file, .png or .npy")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
_SEED = flags.DEFINE_integer("seed", 0, "seed of the noise")
_LABEL = flags.DEFINE_integer(
  "label", None, "class to draw, for a class-conditional run (default: each class in turn)"
)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    fail("--workdir=DIR is required")
  if not _OUT.value.endswith((".png", ".npy")):
    fail(f"--out={_OUT.value} must end in .png or .npy")
  if not os.path.isdir(os.path.dirname(os.path.abspath(_OUT.value))):
    fail(f"--out={_OUT.value}: its folder does not exist")
  if _NUM.value <= 0:
    fail(f"--num={_NUM.value} must be > 0")
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  import jax  # after flag parsing, as every command
  import numpy as np

  from gan_jax import compile_cache, data, plotting, run_dir

  compile_cache.enable()
  try:
    exp, state = run_dir.restore(_WORKDIR.value, _STEP.value)
  except UserError as e:
    fail(str(e))
  num_classes = exp.config.model.num_classes
  if _LABEL.value is not None and not 0 <= _LABEL.value < max(num_classes, 1):
    fail(
      f"--label={_LABEL.value}: the run in {_WORKDIR.value} has classes 0..{num_classes - 1}"
      if num_classes
      else f"--label: the run in {_WORKDIR.value} is unconditional (model.num_classes=0)"
    )
  labels = exp.labels(_NUM.value, _LABEL.value)
  samples = exp.sample(state, exp.noise(jax.random.key(_SEED.value), _NUM.value), labels)
  if _OUT.value.endswith(".npy"):
    np.save(_OUT.value, samples.astype(np.float32))
  else:
    plotting.save_samples(samples, _OUT.value, data.toy_modes(exp.config.data))
  print(f"wrote {len(samples)} samples of step {int(state.step)} to {_OUT.value}", file=sys.stdout)


if __name__ == "__main__":
  run(main)
