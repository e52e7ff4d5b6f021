"""python -m gan_jax.evaluate --workdir=runs/x [--num_samples=10000] [--step=N]
                             [--classifier=DIR] [--real_split=test]

Evaluates a run's checkpoint (default: the latest) and writes WORKDIR/eval.json: for 2-D toys the
mode coverage of the PacGAN protocol; for images, with a gan_jax.classifier, FID/KID/precision/
recall in its feature space, Inception Score and class coverage from its logits. Each result says
how it was made (extractor and weights hash, sample counts, real split, resize method). The real
side's statistics are cached beside the classifier, keyed by dataset, split and weights hash.
"""

import json
import os
import sys

import numpy as np
from absl import app, flags, logging

from gan_jax import UserError, classifier, metrics
from gan_jax.cli import fail, parse_flags

FLAGS = flags.FLAGS
MAX_KERNEL_SAMPLES = 10000   # KID and precision/recall hold features in memory: cap them


def real_reference(config, classifier_dir: str, info: dict, features_of, split: str) -> dict:
  """Mean, covariance and up to MAX_KERNEL_SAMPLES features of a real split (cached on disk)."""
  from gan_jax import data
  path = os.path.join(classifier_dir, f"reference_{config.data.name}_{split}_{info['sha256'][:16]}.npz")
  if not os.path.exists(path):
    real_data = config.data.copy_and_resolve_references()
    real_data.split = split
    images = data.load_images(real_data)
    features, _ = features_of(images)
    stats = metrics.FeatureStats(features.shape[1])
    stats.update(features)
    mean, cov = stats.mean_cov()
    subset = np.random.default_rng(0).permutation(len(features))[:MAX_KERNEL_SAMPLES]
    np.savez(path, mean=mean, cov=cov, features=features[subset], count=len(features))
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def image_metrics(samples_uint8, config, classifier_dir: str, real_split: str) -> dict:
  features_of, info = classifier.load(classifier_dir)
  if list(samples_uint8.shape[1:]) != info["image_shape"]:
    raise UserError(f"the classifier takes {info['image_shape']} images, the run makes "
                    f"{list(samples_uint8.shape[1:])}")
  real = real_reference(config, classifier_dir, info, features_of, real_split)
  features, logits = features_of(samples_uint8)
  stats = metrics.FeatureStats(features.shape[1])
  stats.update(features)
  kernel_fake = features[:MAX_KERNEL_SAMPLES]
  kid, kid_std = metrics.kernel_inception_distance(real["features"], kernel_fake)
  precision, recall = metrics.precision_recall(real["features"], kernel_fake)
  inception, inception_std = metrics.inception_score(logits)
  return {
      "fid": metrics.frechet_distance(real["mean"], real["cov"], *stats.mean_cov()),
      "kid": kid, "kid_std": kid_std, "precision": precision, "recall": recall,
      "inception_score": inception, "inception_score_std": inception_std,
      **metrics.class_coverage(logits),
      "how": {"extractor": f"gan_jax.classifier ({info['dataset']}, test accuracy "
                           f"{info['test_accuracy']:.4f})",
              "weights_sha256": info["sha256"], "num_fake": int(len(samples_uint8)),
              "num_real": int(real["count"]), "num_kernel_samples": int(len(kernel_fake)),
              "real_dataset": config.data.name, "real_split": real_split, "resize": "none",
              "kid": "unbiased MMD^2, k(x,y)=(x.y/d+1)^3, 100 subsets of up to 1000",
              "precision_recall": "Kynkaanniemi et al. 2019, k=3"}}


def to_uint8(images) -> np.ndarray:
  """Generator outputs in [-1, 1] quantised like real images."""
  return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def evaluate(workdir: str, num_samples: int | None = None, step: int | None = None,
             classifier_dir: str = "", real_split: str = "test", seed: int = 0) -> dict:
  import jax
  from gan_jax.sample import load_generator
  sample, config, step = load_generator(workdir, step)
  if config.data.source == "toy":
    num_samples = num_samples or 2500   # the PacGAN protocol
    points = sample(jax.random.key(seed), num_samples)
    result = {**metrics.toy_mode_coverage(points, config.data.name),
              "how": {"num_fake": num_samples, "protocol": "PacGAN: high quality within 3 sigma"}}
  else:
    if not classifier_dir:
      raise UserError("image metrics need --classifier=DIR (python -m gan_jax.classifier trains one)")
    images = to_uint8(sample(jax.random.key(seed), num_samples or 10000))
    result = image_metrics(images, config, classifier_dir, real_split)
  result = {"step": step, "seed": seed, **result}
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def _define_flags() -> None:
  """Only when run as a program: importing this module for its functions defines no flags."""
  flags.DEFINE_string("workdir", None, "run directory written by gan_jax.main")
  flags.DEFINE_integer("num_samples", None, "generated samples (default 10000; 2500 for 2-D toys)")
  flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
  flags.DEFINE_string("classifier", "", "gan_jax.classifier directory (image runs)")
  flags.DEFINE_string("real_split", "test", "real split the samples are compared with")
  flags.DEFINE_integer("seed", 0, "seed of the generated samples")


def main(argv):
  if len(argv) > 1 or not FLAGS.workdir:
    fail("usage: python -m gan_jax.evaluate --workdir=DIR [--classifier=DIR] [--num_samples=N]")
  logging.set_verbosity(logging.ERROR)
  try:
    result = evaluate(FLAGS.workdir, FLAGS.num_samples, FLAGS.step, FLAGS.classifier,
                      FLAGS.real_split, FLAGS.seed)
  except UserError as e:
    fail(str(e))
  print(json.dumps({k: v for k, v in result.items() if k != "how"}), file=sys.stdout)


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=parse_flags)
