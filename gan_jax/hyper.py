"""Building blocks of a sweep, for an experiment's `get_sweep(hyper)`: each returns a list of
trials, a trial being a dict {dotted config field: value}. The names are those of the `hyper`
module that big_vision's and scenic's configs are written against (sweep, product, zipit, chainit).

    def get_sweep(hyper):
      return hyper.product(hyper.sweep("optimizer.d.lr", [1e-4, 2e-4, 4e-4]),
                           hyper.sweep("seed", [0, 1, 2, 3]))
"""

import itertools

import numpy as np


def sweep(field: str, values) -> list[dict]:
  return [{field: v} for v in values]


def product(*sweeps: list[dict]) -> list[dict]:
  """Every combination (a grid search)."""
  return [
    dict(kv for trial in combo for kv in trial.items()) for combo in itertools.product(*sweeps)
  ]


def zipit(*sweeps: list[dict]) -> list[dict]:
  """Trials side by side: the k-th trials of every sweep together."""
  if len({len(s) for s in sweeps}) > 1:
    raise ValueError("hyper.zipit needs sweeps of equal length")
  return [dict(kv for trial in combo for kv in trial.items()) for combo in zip(*sweeps)]


def chainit(*sweeps: list[dict]) -> list[dict]:
  """One sweep after another."""
  return [trial for s in sweeps for trial in s]


def log_uniform(low: float, high: float):
  return lambda rng, n: np.exp(rng.uniform(np.log(low), np.log(high), n)).tolist()


def uniform(low: float, high: float):
  return lambda rng, n: rng.uniform(low, high, n).tolist()


def choice(values):
  return lambda rng, n: [values[i] for i in rng.integers(len(values), size=n)]


def random_search(num_trials: int, seed: int = 0, **distributions) -> list[dict]:
  """`num_trials` draws; keyword names use "__" for "."
  (optimizer__d__lr=log_uniform(1e-5, 1e-3))."""
  rng = np.random.default_rng(seed)
  columns = {
    field.replace("__", "."): draw(rng, num_trials) for field, draw in distributions.items()
  }
  return [{field: values[i] for field, values in columns.items()} for i in range(num_trials)]
