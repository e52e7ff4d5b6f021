"""python -m gan_jax.sample --workdir=runs/x --num=64 --out=grid.png   (or --out=samples.npy)

A .png is a picture (a grid of images, or a scatter plot of 2-D samples); a .npy holds the raw
generator outputs, float32, images in [-1, 1] as (N, H, W, C)."""

import json
import os
import sys

from absl import app, flags, logging

from gan_jax import UserError
from gan_jax.cli import fail, parse_flags

FLAGS = flags.FLAGS


def load_generator(workdir: str, step: int | None = None):
  """(sample(key, n) -> np.ndarray, config, step) from a run directory's checkpoint."""
  import jax
  import ml_collections
  import numpy as np

  from gan_jax import checkpointing, parallel, train
  from gan_jax.train_step import generate

  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory (no config.json)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  mesh = parallel.make_mesh(1)
  gan, init = train.setup(config, parallel.replicated(mesh))
  mngr = checkpointing.manager(workdir, config.keep_checkpoints)
  state = checkpointing.restore(mngr, init(train.run_keys(config.seed)["init"]), step)
  if state is None:
    raise UserError(f"no checkpoint in {workdir}/checkpoints")
  params = train.sampling_params(config, state)
  generate_fn = jax.jit(lambda z: generate(gan, params, state.g_stats, z))

  def sample(key, n: int, chunk: int = 1000):
    z = jax.random.normal(key, (n, config.model.nz))
    return np.concatenate([np.asarray(generate_fn(z[i:i + chunk])) for i in range(0, n, chunk)])

  return sample, config, int(state.step)


def _define_flags() -> None:
  """Only when run as a program: importing this module for its functions defines no flags."""
  flags.DEFINE_string("workdir", None, "run directory written by gan_jax.main")
  flags.DEFINE_integer("num", 64, "number of samples")
  flags.DEFINE_string("out", "samples.png", "output file, .png or .npy")
  flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
  flags.DEFINE_integer("seed", 0, "seed of the noise")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.workdir:
    fail("--workdir=DIR is required")
  if not FLAGS.out.endswith((".png", ".npy")):
    fail(f"--out={FLAGS.out} must end in .png or .npy")
  logging.set_verbosity(logging.ERROR)
  import jax
  import numpy as np

  from gan_jax import plotting
  from gan_jax.data import toy
  try:
    sample, config, step = load_generator(FLAGS.workdir, FLAGS.step)
  except UserError as e:
    fail(str(e))
  samples = sample(jax.random.key(FLAGS.seed), FLAGS.num)
  if FLAGS.out.endswith(".npy"):
    np.save(FLAGS.out, samples.astype(np.float32))
  else:
    modes = toy.modes(config.data.name)[0] if config.data.source == "toy" else None
    plotting.save_samples(samples, FLAGS.out, modes)
  print(f"wrote {len(samples)} samples of step {step} to {FLAGS.out}", file=sys.stdout)


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=parse_flags)
