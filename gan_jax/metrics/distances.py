"""Sample-quality metrics between a real and a generated feature set.

Features stream through `FeatureStats` (float64 sums on the host, so N can be large); the Frechet
distance takes the matrix square root in float64 (SciPy). KID and precision/recall need the
features themselves and compute their kernels and distances in JAX, in blocks.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np


class FeatureStats:
  """Running mean and covariance of feature batches, accumulated in float64."""

  def __init__(self, dim: int):
    self.n, self.total, self.outer = 0, np.zeros(dim), np.zeros((dim, dim))

  def update(self, features) -> None:
    x = np.asarray(features, np.float64)
    self.n += len(x)
    self.total += x.sum(0)
    self.outer += x.T @ x

  def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
    mean = self.total / self.n
    cov = (self.outer - self.n * np.outer(mean, mean)) / (self.n - 1)
    return mean, cov


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) of two Gaussians, in float64."""
  import scipy.linalg  # here: 0.2 s of every command's start otherwise, and only FID needs it

  mu1, mu2, cov1, cov2 = (np.asarray(a, np.float64) for a in (mu1, mu2, cov1, cov2))
  with warnings.catch_warnings():  # singular products (dead ReLU features) are handled below
    warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
    warnings.simplefilter("ignore", RuntimeWarning)
    covmean = scipy.linalg.sqrtm(cov1 @ cov2)
  if not np.isfinite(covmean).all():  # singular product: nudge both diagonals (as pytorch-fid)
    offset = np.eye(len(cov1)) * 1e-6
    covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
  covmean = covmean.real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


@jax.jit
def _polynomial_mmd2(x, y):
  """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al.)."""
  d = x.shape[1]
  kernel = lambda a, b: (a @ b.T / d + 1.0) ** 3
  m = x.shape[0]
  kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
  off_diagonal_mean = lambda k: (k.sum() - jnp.trace(k)) / (m * (m - 1))
  return off_diagonal_mean(kxx) + off_diagonal_mean(kyy) - 2 * kxy.mean()


def kernel_inception_distance(
  real, fake, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
  """(mean, std) of the unbiased polynomial-kernel MMD^2 over random equal-size subsets."""
  real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
  m = min(subset_size, len(real), len(fake))
  rng = np.random.default_rng(seed)
  values = [
    float(
      _polynomial_mmd2(
        real[rng.choice(len(real), m, replace=False)], fake[rng.choice(len(fake), m, replace=False)]
      )
    )
    for _ in range(num_subsets)
  ]
  return float(np.mean(values)), float(np.std(values))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
  """(mean, std) over splits of exp(E_x KL(p(y|x) || p(y))), from classifier logits."""
  log_p = np.asarray(jax.nn.log_softmax(jnp.asarray(logits, jnp.float32)), np.float64)
  scores = []
  for part in np.array_split(log_p, splits):
    log_marginal = np.log(np.exp(part).mean(0))
    kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


@functools.partial(jax.jit, static_argnames="k")
def _kth_neighbour_distance(x, block, k: int):
  d = jnp.sqrt(jnp.maximum(_squared_distances(block, x), 0.0))
  return jnp.sort(d, axis=1)[:, k]  # column 0 is the point itself


@jax.jit
def _inside_any_ball(points, centres, radii):
  d = jnp.sqrt(jnp.maximum(_squared_distances(points, centres), 0.0))
  return jnp.any(d <= radii[None, :], axis=1)


def _squared_distances(a, b):
  return jnp.sum(a**2, 1)[:, None] - 2 * a @ b.T + jnp.sum(b**2, 1)[None, :]


def _blocks(x, size=1024):
  return [x[i : i + size] for i in range(0, len(x), size)]


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
  """Kynkaanniemi et al. 2019: precision = share of fakes inside the real k-NN manifold (union of
  balls reaching each real point's k-th neighbour); recall = share of reals inside the fake one."""
  real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)

  def manifold_contains(support, queries):
    radii = jnp.concatenate([_kth_neighbour_distance(support, b, k) for b in _blocks(support)])
    return np.concatenate(
      [np.asarray(_inside_any_ball(q, support, radii)) for q in _blocks(queries)]
    )

  return float(manifold_contains(real, fake).mean()), float(manifold_contains(fake, real).mean())
