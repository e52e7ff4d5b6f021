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

from gan_jax import UserError, metrics
from gan_jax.metrics import extractors
from gan_jax.cli import fail, parse_flags

FLAGS = flags.FLAGS
MAX_KERNEL_SAMPLES = 10000   # KID and precision/recall hold features in memory: cap them


def real_reference(config, extractor, split: str, cache_dir: str) -> dict:
  """Mean, covariance and up to MAX_KERNEL_SAMPLES features of a real split, cached in
  `cache_dir` under a name keyed by dataset, split and the extractor's weights hash."""
  from gan_jax import data
  name = f"reference_{config.data.name}_{split}_{extractor.info['sha256'][:16]}.npz"
  path = os.path.join(cache_dir, name)
  if not os.path.exists(path):
    real_data = config.data.copy_and_resolve_references()
    real_data.split = split
    features, _ = extractor.features_of(data.load_images(real_data))
    stats = metrics.FeatureStats(features.shape[1])
    stats.update(features)
    mean, cov = stats.mean_cov()
    subset = np.random.default_rng(0).permutation(len(features))[:MAX_KERNEL_SAMPLES]
    np.savez(path, mean=mean, cov=cov, features=features[subset], count=len(features))
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def image_metrics(samples_uint8, config, extractor, real_split: str, cache_dir: str) -> dict:
  """FID, KID, precision/recall and Inception Score in the extractor's space (class coverage too
  when it is a gan_jax.classifier)."""
  shape = extractor.info.get("image_shape")
  if shape and list(samples_uint8.shape[1:]) != shape:
    raise UserError(f"the classifier takes {shape} images, the run makes {list(samples_uint8.shape[1:])}")
  real = real_reference(config, extractor, real_split, cache_dir)
  features, logits = extractor.features_of(samples_uint8)
  stats = metrics.FeatureStats(features.shape[1])
  stats.update(features)
  kernel_fake = features[:MAX_KERNEL_SAMPLES]
  kid, kid_std = metrics.kernel_inception_distance(real["features"], kernel_fake)
  precision, recall = metrics.precision_recall(real["features"], kernel_fake)
  inception, inception_std = metrics.inception_score(logits)
  coverage = metrics.class_coverage(logits) if "num_classes" in extractor.info else {}
  return {
      "fid": metrics.frechet_distance(real["mean"], real["cov"], *stats.mean_cov()),
      "kid": kid, "kid_std": kid_std, "precision": precision, "recall": recall,
      "inception_score": inception, "inception_score_std": inception_std, **coverage,
      "how": {"extractor": extractor.info["extractor"], "weights_sha256": extractor.info["sha256"],
              "num_fake": int(len(samples_uint8)), "num_real": int(real["count"]),
              "num_kernel_samples": int(len(kernel_fake)), "real_dataset": config.data.name,
              "real_split": real_split, "resize": extractor.info["resize"],
              "kid": "unbiased MMD^2, k(x,y)=(x.y/d+1)^3, 100 subsets of up to 1000",
              "precision_recall": "Kynkaanniemi et al. 2019, k=3"}}


def to_uint8(images) -> np.ndarray:
  """Generator outputs in [-1, 1] quantised like real images."""
  return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def sample_metrics(samples, config, classifier_dir: str = "", real_split: str = "test",
                   inception_weights: str = "") -> dict:
  """The metrics of generator outputs: toy mode coverage, or image metrics in the space of a
  gan_jax.classifier or of the FID Inception-v3 (weights from a local file)."""
  if config.data.source == "toy":
    return {**metrics.toy_mode_coverage(samples, config.data.name),
            "how": {"num_fake": len(samples), "protocol": "PacGAN: high quality within 3 sigma"}}
  if inception_weights:
    extractor, cache_dir = extractors.inception(inception_weights), os.path.dirname(inception_weights)
  elif classifier_dir:
    extractor, cache_dir = extractors.classifier(classifier_dir), classifier_dir
  else:
    raise UserError("image metrics need a feature extractor: --classifier=DIR (or "
                    "config.eval_classifier; python -m gan_jax.classifier trains one) or "
                    "--inception_weights=FILE")
  return image_metrics(to_uint8(samples), config, extractor, real_split, cache_dir or ".")


def default_num_samples(config) -> int:
  return 2500 if config.data.source == "toy" else 10000   # PacGAN's protocol; the usual FID count


def evaluate(workdir: str, num_samples: int | None = None, step: int | None = None,
             classifier_dir: str = "", real_split: str = "test", seed: int = 0,
             inception_weights: str = "") -> dict:
  import jax
  from gan_jax.sample import load_generator
  sample, config, step = load_generator(workdir, step)
  samples = sample(jax.random.key(seed), num_samples or default_num_samples(config))
  result = {"step": step, "seed": seed,
            **sample_metrics(samples, config, classifier_dir or config.eval_classifier, real_split,
                             inception_weights)}
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def _define_flags() -> None:
  """Only when run as a program: importing this module for its functions defines no flags."""
  flags.DEFINE_string("workdir", None, "run directory written by gan_jax.main")
  flags.DEFINE_integer("num_samples", None, "generated samples (default 10000; 2500 for 2-D toys)")
  flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
  flags.DEFINE_string("classifier", "", "gan_jax.classifier directory (image runs)")
  flags.DEFINE_string("inception_weights", "", "local file of the FID Inception-v3 weights "
                      "(pytorch-fid's .pth or its state dict as .npz/.pkl, or jax-fid's pickle)")
  flags.DEFINE_string("real_split", "test", "real split the samples are compared with")
  flags.DEFINE_integer("seed", 0, "seed of the generated samples")


def main(argv):
  if len(argv) > 1 or not FLAGS.workdir:
    fail("usage: python -m gan_jax.evaluate --workdir=DIR [--classifier=DIR] [--num_samples=N]")
  logging.set_verbosity(logging.ERROR)
  try:
    result = evaluate(FLAGS.workdir, FLAGS.num_samples, FLAGS.step, FLAGS.classifier,
                      FLAGS.real_split, FLAGS.seed, FLAGS.inception_weights)
  except UserError as e:
    fail(str(e))
  print(json.dumps({k: v for k, v in result.items() if k != "how"}), file=sys.stdout)


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=parse_flags)
