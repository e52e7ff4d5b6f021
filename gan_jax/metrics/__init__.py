"""Evaluation metrics: distances between feature sets and mode coverage."""

from gan_jax.metrics.coverage import class_coverage, conditional_accuracy, toy_mode_coverage
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
  "conditional_accuracy",
  "frechet_distance",
  "inception_score",
  "kernel_inception_distance",
  "precision_recall",
  "toy_mode_coverage",
]
