"""Sweeps that spend their steps on the trials that work: population-based training and successive
halving, both deterministic given the config and resumable from the trials' checkpoints.

Population-based training (Jaderberg et al. 2017): the trials are trained as one vectorised
program; every `pbt.interval` steps they are ranked by the sweep's metric, and each trial of the
bottom quantile takes over the whole train state of a trial of the top quantile (parameters,
statistics, both optimisers' states, EMA), on device, then perturbs the numbers the sweep varies.

Successive halving (Jamieson and Talwalkar 2016; the rungs of ASHA, Li et al. 2020): every trial
trains to the first rung, the best 1/eta go on to eta times as many steps, and so on. The stopped
trials' slots are not refilled: the next rung's program is compiled for the survivors only, so
every step trains a trial that is still in the race, and a sweep given as a grid needs no
distribution to draw new trials from.
"""

import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import UserError, ranking, reporting
from gan_jax.train_step import TrainState, read_number, vector_fields, with_number

# Numbers that live in [0, 1): perturbed through 1 - value, so that they stay there.
_FRACTIONS = ("ema_decay", "b1", "b2", "rms_decay")


def perturbable_fields(trials: list[dict]) -> list[str]:
  """The numbers a population may perturb: those the sweep varies that the step reads from its
  state (never the seed)."""
  if len(trials) < 2:
    raise UserError("--strategy=pbt needs a population of at least 2 trials")
  numbers = set(vector_fields()) - {"seed"}
  fields = sorted({f for t in trials for f in t if f in numbers})
  if not fields:
    raise UserError(
      "--strategy=pbt perturbs the numbers the sweep varies (learning rates, betas, loss "
      f"weights: {', '.join(sorted(numbers))}); this sweep varies none of them"
    )
  return fields


class PopulationBasedTraining:
  """The exploit-and-explore step of stacked trials `names` (their overrides `trials`); events go
  to WORKDIR/lineage.jsonl, one record per trial that copied another."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    quality: ranking.Quality,
    names: list[str],
    trials: list[dict],
    workdir: str,
  ):
    self.pbt, self.quality, self.names = config.pbt, quality, names
    self.fields = perturbable_fields(trials)
    self.values = {f: sorted({t[f] for t in trials if f in t}) for f in self.fields}
    self.path = os.path.join(workdir, "lineage.jsonl")
    self.log = None
    self._reorder = jax.jit(lambda state, source: jax.tree.map(lambda x: x[source], state))

  def open(self, step: int) -> None:
    """Continue the lineage of a population resumed at `step`."""
    self.log = reporting.MetricsLog(self.path, step)

  def due(self, step: int, num_steps: int) -> bool:
    return step % self.pbt.interval == 0 and step < num_steps

  def exploit_and_explore(self, step: int, state: TrainState, results: list[dict]) -> TrainState:
    """`state` after the bottom quantile (by `results`, each trial's evaluation) copied the top's
    and perturbed its numbers."""
    k = len(self.names)
    order = sorted(range(k), key=lambda i: (self.quality.key(results[i]), i))
    n = max(1, int(k * self.pbt.quantile))
    top, bottom = order[:n], order[-n:]
    rng = np.random.default_rng([self.pbt.seed, step])
    numbers = {f: np.array(jax.device_get(read_number(state, f))) for f in self.fields}
    source = np.arange(k)
    for i in bottom:
      donor = top[rng.integers(n)]
      source[i] = donor
      event = {"step": step, "trial": self.names[i], "from": self.names[donor]}
      for field in self.fields:
        numbers[field][i] = self._explore(rng, field, float(numbers[field][donor]))
        event[field] = float(f"{numbers[field][i]:.6g}")  # the float32 the state holds
      self.log.write(event)
    state = self._reorder(state, jnp.asarray(source))
    for field, values in numbers.items():
      state = with_number(state, field, jnp.asarray(values, jnp.float32))
    return state

  def _explore(self, rng: np.random.Generator, field: str, value: float) -> float:
    if rng.random() < self.pbt.resample_probability:
      return float(rng.choice(self.values[field]))
    factor = float(rng.choice(self.pbt.perturb))
    if field.rsplit(".", 1)[-1] in _FRACTIONS:
      return float(np.clip(1.0 - (1.0 - value) * factor, 0.0, 0.9999))
    return value * factor


def read_lineage(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "lineage.jsonl")
  return reporting.read_metrics(path) if os.path.exists(path) else []


def final_numbers(trials: list[dict], names: list[str], lineage: list[dict]) -> list[dict]:
  """Each trial's overrides with the numbers its last copy gave it."""
  final = [dict(t) for t in trials]
  index = {n: i for i, n in enumerate(names)}
  for event in lineage:
    final[index[event["trial"]]].update(
      {k: v for k, v in event.items() if k not in ("step", "trial", "from")}
    )
  return final


def rungs(config: ml_collections.ConfigDict) -> list[int]:
  """The steps at which successive halving ranks its trials: min_steps * eta^i, then the end."""
  steps, rung = [], config.halving.min_steps
  while rung < config.train.num_steps:
    steps.append(rung)
    rung *= config.halving.eta
  return [*steps, config.train.num_steps]


def successive_halving(
  configs: list[ml_collections.ConfigDict],
  names: list[str],
  workdirs: list[str],
  quality: ranking.Quality,
  train_to,
) -> dict:
  """Train the trials rung by rung, `train_to(indices, configs)` training trials `indices` to
  their configs' num_steps (resuming); after each rung but the last only the best 1/eta go on.
  Every decision is read back from the trials' evaluations, so a rerun makes the same ones.
  Returns {"rungs": [...], "stopped": {name: step}}."""
  schedule = rungs(configs[0])
  alive, stopped = list(range(len(configs))), {}
  for rung in schedule:
    rung_configs = []
    for i in alive:
      c = configs[i].copy_and_resolve_references()
      if not c.train.decay_steps:  # a schedule decays over the whole sweep, not one rung
        c.train.decay_steps = configs[i].train.num_steps
      c.train.num_steps = rung
      rung_configs.append(c)
    train_to(alive, rung_configs)
    if rung == schedule[-1]:
      break
    results = [evaluation_at(workdirs[i], rung) for i in alive]
    order = sorted(range(len(alive)), key=lambda j: (quality.key(results[j]), alive[j]))
    keep = math.ceil(len(alive) / configs[0].halving.eta)
    stopped |= {names[alive[j]]: rung for j in order[keep:]}
    alive = sorted(alive[j] for j in order[:keep])
  return {"rungs": schedule, "stopped": stopped}


def evaluation_at(workdir: str, step: int) -> dict:
  """A trial's evaluation record of `step`, without the "eval/" prefix."""
  for record in reporting.read_metrics(os.path.join(workdir, "metrics.jsonl")):
    if record["step"] == step and any(k.startswith("eval/") for k in record):
      return {k[5:]: v for k, v in record.items() if k.startswith("eval/")}
  raise UserError(f"{workdir} has no evaluation of step {step}: its metrics.jsonl was edited")
