"""Sweeps as a library: an experiment's trials, grouped into programs, trained stacked, summarised.
`python -m gan_jax.sweep` is its command line.

Trials that differ only in numbers the step reads from its state (train_step.vector_fields) are
trained together as one program: their states stacked on a leading trial axis, the step vmapped
over it. Each trial still writes its own run directory, exactly as a run of its own would.
"""

import csv
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import (
  UserError,
  checkpointing,
  data,
  experiment,
  hyper,
  parallel,
  plotting,
  reporting,
  run_dir,
  train,
)
from gan_jax import config as config_lib
from gan_jax.train_step import TrainState, vector_fields


def load_trials(config_file: str) -> list[dict]:
  module = config_lib.experiment_module(config_file)
  if not hasattr(module, "get_sweep"):
    raise UserError(f"{config_file} defines no get_sweep(hyper)")
  trials = module.get_sweep(hyper)
  if not trials:
    raise UserError(f"get_sweep() of {config_file} returned no trials")
  return trials


def trial_config(base: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  config = base.copy_and_resolve_references()
  for field, value in overrides.items():
    node, *path = config, *field.split(".")
    for part in path[:-1]:
      node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or path[-1] not in node:
      raise UserError(f"the sweep sets unknown config field {field!r}")
    try:
      node[path[-1]] = value
    except TypeError as e:
      raise UserError(f"the sweep sets {field}={value!r}: {e}") from e
  return config


def program_key(config: ml_collections.ConfigDict) -> str:
  """Equal for configs that compile to the same vmappable program."""
  numbers = vector_fields()
  flat = {k: v for k, v in config_lib.flatten(config.to_dict()).items() if k not in numbers}
  flat["code_paths"] = [config.clip_value > 0, config.r1_gamma > 0]  # branches, not numbers
  return json.dumps(flat, sort_keys=True)


def group_trials(configs, vectorize: bool, max_stack: int) -> list[list[int]]:
  if not vectorize:
    return [[i] for i in range(len(configs))]
  groups: dict[str, list[int]] = {}
  for i, c in enumerate(configs):
    groups.setdefault(program_key(c), []).append(i)
  return [g[s : s + max_stack] for g in groups.values() for s in range(0, len(g), max_stack)]


class StackedRuns:
  """The run directories of stacked trials, driven by train.loop as one run: it slices each
  trial's metrics and state out of the stacked ones, and reads the metrics one step behind."""

  def __init__(self, exp: experiment.Experiment, configs, workdirs, names):
    self.runs = [run_dir.RunDirectory(exp, c, w, n) for c, w, n in zip(configs, workdirs, names)]
    self.metrics = reporting.OneStepBehind(self._write_metrics)

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    for run in self.runs:
      run.__exit__(*exc)

  def restore(self, fresh: list[TrainState]) -> list[TrainState]:
    """Every trial's newest good checkpoint of one common step; else the fresh states."""
    at_most = None
    while True:
      states = [run.restore(s, at_most) for run, s in zip(self.runs, fresh)]
      if None in states:
        return fresh
      steps = {int(jax.device_get(s.step)) for s in states}
      if len(steps) == 1:
        return states
      at_most = min(steps)

  def open(self, step: int) -> None:
    for run in self.runs:
      run.open(step)

  def record(self, step: int, metrics) -> None:
    self.metrics.push(step, metrics)

  def flush(self) -> None:
    self.metrics.flush()

  def _write_metrics(self, step: int, metrics) -> None:
    metrics = jax.device_get(metrics)  # every trial's at once
    for k, run in enumerate(self.runs):
      run.write_metrics(step, _trial(metrics, k))

  def save_checkpoint(self, step: int, state: TrainState) -> None:
    self.flush()
    self._each_trial("save_checkpoint", step, state)

  def save_samples(self, step: int, state: TrainState) -> None:
    self._each_trial("save_samples", step, state)

  def evaluate(self, step: int, state: TrainState) -> None:
    self.flush()
    self._each_trial("evaluate", step, state)

  def _each_trial(self, action: str, step: int, state: TrainState) -> None:
    """RunDirectory.`action` of every trial, on its slice of the stacked state."""
    for k, run in enumerate(self.runs):
      getattr(run, action)(step, _trial(state, k))


def _trial(tree, k: int):
  return jax.tree.map(lambda x: x[k], tree)


def train_trials(configs, workdirs, names) -> TrainState:
  """Train configs of one program (group_trials) as one vmapped program; returns the final state,
  stacked on the leading trial axis."""
  configs = [config_lib.validated(c) for c in configs]
  first = configs[0]
  mesh = parallel.make_trial_mesh(len(configs), first.parallel.num_devices)
  host_share = parallel.host_share(data.samples_per_batch(first))
  examples = None if first.data.source == "toy" else data.load_for(first)
  datasets = [data.create(c, *host_share, examples) for c in configs]
  for c in configs:
    c.data.shape = datasets[0].shape
  exp = experiment.build(first, mesh)
  sharding = parallel.state_sharding(mesh)
  with StackedRuns(exp, configs, workdirs, names) as runs:
    states = runs.restore([exp.init_state(c) for c in configs])
    start = int(jax.device_get(states[0].step))
    state = jax.device_put(jax.tree.map(lambda *xs: jnp.stack(xs), *states), sharding)
    keys = jax.device_put(jnp.stack([run.keys["train"] for run in runs.runs]), sharding)
    del states
    runs.open(start)
    streams = [data.prefetch(d, start, first.train.num_steps) for d in datasets]
    stack = lambda *trial_batches: jax.tree.map(lambda *b: np.stack(b), *trial_batches)
    batches = map(lambda *trial_batches: exp.shard_batch(stack(*trial_batches)), *streams)
    return train.loop(first, runs, exp.step, state, keys, batches, start)


def _finished(config, workdir: str) -> bool:
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return False
  mngr = checkpointing.manager(workdir, config.keep_checkpoints)
  try:
    return mngr.latest_step() == config.train.num_steps
  finally:
    mngr.close()


def run_sweep(
  base: ml_collections.ConfigDict,
  trials: list[dict],
  workdir: str,
  vectorize: bool | None = True,
  max_stack: int = 16,
) -> list[dict]:
  """Train every trial not yet finished; returns the summary rows (also in sweep.csv).

  vectorize=None: on accelerators only (on XLA:CPU a vmapped convolution with per-trial weights
  becomes a grouped convolution, slower than the trials one after another; benchmarks/NOTES.md).
  """
  if vectorize is None:
    vectorize = jax.default_backend() != "cpu"
  configs = [trial_config(base, t) for t in trials]
  names = [f"trial_{i:03d}" for i in range(len(trials))]
  workdirs = [os.path.join(workdir, n) for n in names]
  os.makedirs(workdir, exist_ok=True)
  record_path = os.path.join(workdir, "sweep.json")
  record = {"trials": [{"name": n, "overrides": t} for n, t in zip(names, trials)], "timing": {}}
  if os.path.exists(record_path):
    with open(record_path) as f:
      old = json.load(f)
    if old["trials"] != json.loads(json.dumps(record["trials"])):
      raise UserError(f"{workdir} holds another sweep (its trials differ); use a new --workdir")
    record["timing"] = old.get("timing", {})
  for group in group_trials(configs, vectorize, max_stack):
    todo = [i for i in group if not _finished(configs[i], workdirs[i])]
    if not todo:
      continue
    print(
      f"training {', '.join(names[i] for i in todo)}{' vectorised' if len(todo) > 1 else ''}",
      flush=True,
    )
    tic = time.perf_counter()
    if len(todo) == 1:
      train.train_and_evaluate(configs[todo[0]], workdirs[todo[0]])
    else:
      train_trials(
        [configs[i] for i in todo], [workdirs[i] for i in todo], [names[i] for i in todo]
      )
    seconds = time.perf_counter() - tic
    for i in todo:
      record["timing"][names[i]] = {"seconds": seconds, "trials_in_program": len(todo)}
    with open(record_path, "w") as f:
      json.dump(record, f, indent=2)
  return summarize(workdir, names, trials, record["timing"])


def summarize(workdir: str, names: list[str], trials: list[dict], timing: dict) -> list[dict]:
  """sweep.csv (one row per trial) and sweep.png (every trial's loss curves)."""
  rows, curves = [], {}
  fields = sorted({k for t in trials for k in t})
  for name, overrides in zip(names, trials):
    records = reporting.read_metrics(os.path.join(workdir, name, "metrics.jsonl"))
    curves[name] = records
    last = {}  # each metric's latest value: the losses' and the evaluation's records differ
    for record in records:
      last.update(record)
    steps = run_dir.read_config(os.path.join(workdir, name)).train.num_steps
    t = timing.get(name, {})
    rows.append(
      {
        "trial": name,
        **{f: overrides.get(f, "") for f in fields},
        "step": last.get("step", ""),
        **{k: v for k, v in last.items() if k != "step"},
        "steps_per_sec": round(steps / t["seconds"], 3) if t else "",
        "trials_in_program": t.get("trials_in_program", ""),
      }
    )
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with open(os.path.join(workdir, "sweep.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
  plotting.save_overlay(curves, os.path.join(workdir, "sweep.png"))
  return rows
