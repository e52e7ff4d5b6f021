"""Evaluation metrics: distances between feature sets and mode coverage."""

from gan_jax.metrics.coverage import class_coverage, toy_mode_coverage
from gan_jax.metrics.distances import (
  FeatureStats,
  frechet_distance,
  inception_score,
  kernel_inception_distance,
  precision_recall,
)

__all__ = [
  "FeatureStats",
  "class_coverage",
  "frechet_distance",
  "inception_score",
  "kernel_inception_distance",
  "precision_recall",
  "toy_mode_coverage",
]
