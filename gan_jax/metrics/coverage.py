"""Mode coverage: of the 2-D toy mixtures (PacGAN/VEEGAN protocol) and of a dataset's classes."""

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data import toy

TOY_METRICS = ("modes", "num_modes", "high_quality_percent")  # in the order reported


def toy_mode_coverage(samples, dataset: str) -> dict:
  """A sample is high quality within 3 sigma of its nearest mode; a mode is captured when it is
  the nearest mode of at least one high-quality sample."""
  centres, sigma = toy.modes(dataset)
  distance = np.linalg.norm(np.asarray(samples)[:, None] - centres[None], axis=-1)
  high_quality = distance.min(1) <= 3 * sigma
  captured = np.unique(distance.argmin(1)[high_quality])
  return {  # TOY_METRICS
    "modes": int(len(captured)),
    "num_modes": int(len(centres)),
    "high_quality_percent": float(100 * high_quality.mean()),
  }


def toy_mode_coverage_traced(samples, dataset: str) -> dict:
  """toy_mode_coverage as traced arrays, for samples on device (vmapped over a sweep's trials)."""
  centres, sigma = toy.modes(dataset)
  distance = jnp.linalg.norm(samples[:, None] - jnp.asarray(centres)[None], axis=-1)
  high_quality = distance.min(1) <= 3 * sigma
  per_mode = jax.ops.segment_max(high_quality.astype(jnp.int32), distance.argmin(1), len(centres))
  return dict(
    modes=jnp.sum(per_mode > 0),
    num_modes=jnp.asarray(len(centres)),
    high_quality_percent=100 * high_quality.mean(),
  )


def class_coverage(logits) -> dict:
  """How many classes the classifier sees among the samples, and KL(histogram || uniform)."""
  logits = np.asarray(logits)
  num_classes = logits.shape[1]
  histogram = np.bincount(logits.argmax(1), minlength=num_classes) / len(logits)
  nonzero = histogram > 0
  kl = float(np.sum(histogram[nonzero] * np.log(histogram[nonzero] * num_classes)))
  return {"classes": int(nonzero.sum()), "num_classes": num_classes, "class_kl_to_uniform": kl}


def conditional_accuracy(logits, labels) -> dict:
  """Of samples generated for classes `labels`, the share the classifier labels as asked, over
  all and per class (a list, one entry per class)."""
  predicted, labels = np.asarray(logits).argmax(1), np.asarray(labels)
  correct = predicted == labels
  per_class = [
    float(correct[labels == c].mean()) if np.any(labels == c) else float("nan")
    for c in range(np.asarray(logits).shape[1])
  ]
  return {"conditional_accuracy": float(correct.mean()), "per_class_accuracy": per_class}
