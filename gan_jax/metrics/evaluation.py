"""The metrics of a generator's samples, as `gan_jax.evaluate` and training's `eval_every` report
them: for 2-D toys the mode coverage of the PacGAN protocol; for images FID/KID/precision/recall in
a feature extractor's space, Inception Score and class coverage from its logits. Each result says
how it was made. The real side's statistics are cached beside the extractor's weights."""

import hashlib
import json
import os

import numpy as np

from gan_jax import UserError, data
from gan_jax.data import stacked_mnist
from gan_jax.metrics import classifier, extractors
from gan_jax.metrics.coverage import class_coverage, conditional_accuracy, toy_mode_coverage
from gan_jax.metrics.distances import (
  FeatureStats,
  frechet_distance,
  inception_score,
  kernel_inception_distance,
  precision_recall,
)
from gan_jax.pixels import to_uint8

MAX_KERNEL_SAMPLES = 10000  # KID and precision/recall hold features in memory: cap them


def default_num_samples(config) -> int:
  """PacGAN's protocols for the 2-D toys and Stacked MNIST; else the usual FID count."""
  return {"toy": 2500, "stacked_mnist": 26000}.get(config.data.source, 10000)


# Each scalar metric an evaluation reports, with its better direction.
GOALS = {
  "toy": {"modes": "max", "high_quality_percent": "max"},
  "stacked_mnist": {"modes": "max", "mode_kl_to_uniform": "min"},
  "images": {
    **{"fid": "min", "kid": "min", "precision": "max", "recall": "max"},
    **{"inception_score": "max", "classes": "max", "class_kl_to_uniform": "min"},
  },
  "conditional": {"conditional_accuracy": "max"},
}


def goals(config) -> dict[str, str]:
  """The scalar metrics an evaluation of `config` reports (given the classifier that image metrics
  need), each with its better direction. The first is the data's default for ranking a sweep's
  trials (config.sweep.metric), the second breaks its ties."""
  if config.data.source in ("toy", "stacked_mnist"):
    return GOALS[config.data.source]
  return GOALS["images"] | (GOALS["conditional"] if config.model.num_classes else {})


def real_reference(config, extractor: extractors.Extractor, split: str, cache_dir: str) -> dict:
  """Mean, covariance and up to MAX_KERNEL_SAMPLES features of a real split, cached in
  `cache_dir` under a name keyed by what the data is (source, name or path, split, size and a
  fingerprint of the images themselves) and by the extractor's weights."""
  real_data = config.data.copy_and_resolve_references()
  real_data.split = split
  real_data.subset = 0  # a data-efficient run (data.subset) is still compared with the whole split
  images = data.load_images(real_data)
  key = {
    "source": real_data.source,
    "dataset": real_data.path if real_data.source in ("npz", "folder") else real_data.name,
    "split": split,
    "image_size": real_data.image_size,
    "images_sha256": hashlib.sha256(np.ascontiguousarray(images)).hexdigest(),
    "extractor_sha256": extractor.info["sha256"],
  }
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  path = os.path.join(cache_dir, f"reference_{real_data.name}_{split}_{digest}.npz")
  if not os.path.exists(path):
    features, _ = extractor.features_of(images)
    stats = FeatureStats(features.shape[1])
    stats.update(features)
    mean, cov = stats.mean_cov()
    subset = np.random.default_rng(0).permutation(len(features))[:MAX_KERNEL_SAMPLES]
    np.savez(path, mean=mean, cov=cov, features=features[subset], count=len(features))
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def is_scalar(value) -> bool:
  """Whether a metric is one number (the others: per-class lists, "how")."""
  return isinstance(value, (int, float, np.number))


def image_metrics(
  samples_uint8,
  config,
  extractor: extractors.Extractor,
  real_split: str,
  cache_dir: str,
  labels: np.ndarray | None = None,
) -> dict:
  """FID, KID, precision/recall and Inception Score in the extractor's space; class coverage too
  when it is a gan_jax classifier, and for samples of asked-for classes `labels` the conditional
  accuracy (the share the classifier labels as asked), overall and per class."""
  shape = extractor.info.get("image_shape")
  if shape and list(samples_uint8.shape[1:]) != shape:
    raise UserError(
      f"the classifier takes {shape} images, the run makes {list(samples_uint8.shape[1:])}"
    )
  real = real_reference(config, extractor, real_split, cache_dir)
  features, logits = extractor.features_of(samples_uint8)
  stats = FeatureStats(features.shape[1])
  stats.update(features)
  kernel_fake = features[:MAX_KERNEL_SAMPLES]
  kid, kid_std = kernel_inception_distance(real["features"], kernel_fake)
  precision, recall = precision_recall(real["features"], kernel_fake)
  inception, inception_std = inception_score(logits)
  coverage = class_coverage(logits) if "num_classes" in extractor.info else {}
  if coverage and labels is not None:
    coverage.update(conditional_accuracy(logits, labels))
  return {
    "fid": frechet_distance(real["mean"], real["cov"], *stats.mean_cov()),
    "kid": kid,
    "kid_std": kid_std,
    "precision": precision,
    "recall": recall,
    "inception_score": inception,
    "inception_score_std": inception_std,
    **coverage,
    "how": {
      "extractor": extractor.info["extractor"],
      "weights_sha256": extractor.info["sha256"],
      "num_fake": int(len(samples_uint8)),
      "num_real": int(real["count"]),
      "num_kernel_samples": int(len(kernel_fake)),
      "real_dataset": config.data.name,
      "real_split": real_split,
      "resize": extractor.info["resize"],
      "kid": "unbiased MMD^2, k(x,y)=(x.y/d+1)^3, 100 subsets of up to 1000",
      "precision_recall": "Kynkaanniemi et al. 2019, k=3",
    },
  }


def sample_metrics(
  samples,
  config,
  classifier_dir: str = "",
  real_split: str = "test",
  inception_weights: str = "",
  labels: np.ndarray | None = None,
) -> dict:
  """The metrics of generator outputs (asked for classes `labels` if conditional): toy mode
  coverage, or image metrics in the space of a gan_jax classifier or of the FID Inception-v3
  (weights from a local file)."""
  if config.data.source == "toy":
    return {
      **toy_mode_coverage(samples, config.data.name),
      "how": {"num_fake": len(samples), "protocol": "PacGAN: high quality within 3 sigma"},
    }
  if config.data.source == "stacked_mnist":
    if not classifier_dir:
      raise UserError(
        "Stacked MNIST's modes are read by a digit classifier: --classifier=DIR (or "
        "config.eval_classifier; python -m gan_jax.classifier trains one)"
      )
    return stacked_mode_coverage(to_uint8(samples), classifier.load(classifier_dir))
  if inception_weights:
    extractor = extractors.inception(inception_weights)
    cache_dir = os.path.dirname(inception_weights)
  elif classifier_dir:
    extractor, cache_dir = classifier.load(classifier_dir), classifier_dir
  else:
    raise UserError(
      "image metrics need a feature extractor: --classifier=DIR (or "
      "config.eval_classifier; python -m gan_jax.classifier trains one) or "
      "--inception_weights=FILE"
    )
  return image_metrics(to_uint8(samples), config, extractor, real_split, cache_dir or ".", labels)


def stacked_mode_coverage(samples_uint8, extractor: extractors.Extractor) -> dict:
  """Stacked MNIST's modes and KL to uniform, each channel of each sample read as a digit by the
  classifier (PacGAN's evaluation)."""
  channels = np.moveaxis(samples_uint8, -1, 1)[..., None]  # (N, 3, H, W, 1)
  _, logits = extractor.features_of(channels.reshape(-1, *channels.shape[2:]))
  digits = logits.argmax(1).reshape(len(samples_uint8), 3)
  return {
    **stacked_mnist.mode_coverage(digits),
    "how": {
      "extractor": extractor.info["extractor"],
      "num_fake": int(len(samples_uint8)),
      "protocol": "PacGAN: each channel's digit by the classifier, KL to uniform over 1000",
    },
  }
