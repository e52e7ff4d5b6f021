"""python -m gan_jax.evaluate --workdir=runs/x [--num_samples=10000] [--step=N]
                             [--classifier=DIR | --inception_weights=FILE] [--real_split=test]

Evaluates a run's checkpoint (default: the latest) and writes WORKDIR/eval.json with the metrics of
gan_jax.metrics.evaluation: mode coverage for 2-D toys; for images, with a gan_jax.classifier or
the FID Inception-v3, FID/KID/precision/recall, Inception Score and class coverage.
"""

import json
import os
import sys

from absl import flags, logging

from gan_jax import UserError
from gan_jax.cli import fail, run

_WORKDIR = flags.DEFINE_string("workdir", None, "run directory written by gan_jax.main")
_NUM_SAMPLES = flags.DEFINE_integer(
  "num_samples",
  None,
  "generated samples (default 10000; 2500 for 2-D toys, 26000 for Stacked MNIST)",
)
_STEP = flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
_CLASSIFIER = flags.DEFINE_string("classifier", "", "gan_jax.classifier directory (image runs)")
_INCEPTION = flags.DEFINE_string(
  "inception_weights",
  "",
  "local file of the FID Inception-v3 weights (pytorch-fid's .pth or "
  "its state dict as .npz/.pkl, or jax-fid's pickle)",
)
_REAL_SPLIT = flags.DEFINE_string("real_split", "test", "real split the samples are compared with")
_SEED = flags.DEFINE_integer("seed", 0, "seed of the generated samples")


def main(argv: list[str]) -> None:
  if len(argv) > 1 or not _WORKDIR.value:
    fail("usage: python -m gan_jax.evaluate --workdir=DIR [--classifier=DIR] [--num_samples=N]")
  if _NUM_SAMPLES.value is not None and _NUM_SAMPLES.value <= 0:
    fail(f"--num_samples={_NUM_SAMPLES.value} must be > 0 (leave it out for the default)")
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  import jax  # after flag parsing, as every command

  from gan_jax import compile_cache, run_dir
  from gan_jax.metrics import evaluation

  compile_cache.enable()
  try:
    exp, state = run_dir.restore(_WORKDIR.value, _STEP.value)
    num = _NUM_SAMPLES.value or evaluation.default_num_samples(exp.config)
    labels = exp.labels(num)
    samples = exp.sample(state, exp.noise(jax.random.key(_SEED.value), num), labels)
    result = {
      "step": int(state.step),
      "seed": _SEED.value,
      **evaluation.sample_metrics(
        samples,
        exp.config,
        _CLASSIFIER.value or exp.config.eval_classifier,
        _REAL_SPLIT.value,
        _INCEPTION.value,
        labels,
      ),
    }
  except UserError as e:
    fail(str(e))
  with open(os.path.join(_WORKDIR.value, "eval.json"), "w") as f:
    json.dump(result, f, indent=2)
  print(json.dumps({k: v for k, v in result.items() if k != "how"}), file=sys.stdout)


if __name__ == "__main__":
  run(main)
