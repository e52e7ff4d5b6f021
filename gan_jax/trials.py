"""Sweeps as a library: an experiment's trials, grouped into programs, trained stacked, summarised.
`python -m gan_jax.sweep` is its command line.

Trials that differ only in numbers the step reads from its state (train_step.vector_fields) are
trained together as one program: their states stacked on a leading trial axis, the step vmapped
over it. Each trial still writes its own run directory, exactly as a run of its own would.
"""

import csv
import functools
import json
import os
import time

import jax
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
  population,
  ranking,
  reporting,
  run_dir,
  train,
)
from gan_jax import config as config_lib
from gan_jax.metrics import evaluation
from gan_jax.metrics.coverage import TOY_METRICS, toy_mode_coverage_traced
from gan_jax.population import PopulationBasedTraining, successive_halving
from gan_jax.train_step import TrainState, vector_fields


def load_trials(config_file: str) -> list[dict]:
  module = config_lib.experiment_module(config_file)
  if not hasattr(module, "get_sweep"):
    raise UserError(f"{config_file} defines no get_sweep(hyper)")
  trials = module.get_sweep(hyper)
  if not trials:
    raise UserError(f"get_sweep() of {config_file} returned no trials")
  return trials


def trial_names(count: int) -> list[str]:
  """The run directories of a sweep's trials, in the order of its get_sweep()."""
  return [f"trial_{i:03d}" for i in range(count)]


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

  def __init__(self, exp: experiment.Experiment, configs, workdirs, names, population=None):
    self.runs = [run_dir.RunDirectory(exp, c, w, n) for c, w, n in zip(configs, workdirs, names)]
    self.metrics = reporting.OneStepBehind(self._write_metrics)
    self.exp, self.population, self.evaluated = exp, population, (None, None)
    self._toy_quality = None
    if configs[0].data.source == "toy":
      coverage = functools.partial(toy_mode_coverage_traced, dataset=configs[0].data.name)
      self._toy_quality = jax.jit(lambda state, z: jax.vmap(coverage)(exp.sample_trials(state, z)))

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
    if self.population:
      self.population.open(step)

  def adapt(self, step: int, state: TrainState) -> TrainState:
    """Population-based training's exploit and explore, when due at `step`."""
    num_steps = self.runs[0].config.train.num_steps
    if not self.population or not self.population.due(step, num_steps):
      return state
    results = self.evaluate(step, state)
    state = self.population.exploit_and_explore(step, state, results)
    return jax.device_put(state, parallel.state_sharding(self.exp.mesh))  # as the step takes it

  def record(self, step: int, metrics) -> None:
    self.metrics.push(step, metrics)

  def flush(self) -> None:
    self.metrics.flush()

  def _write_metrics(self, step: int, metrics) -> None:
    metrics = parallel.to_host(metrics)  # every trial's at once
    for k, run in enumerate(self.runs):
      run.write_metrics(step, _trial(metrics, k))

  def save_checkpoint(self, step: int, state: TrainState) -> None:
    self.flush()
    self._each_trial("save_checkpoint", step, state)

  def save_samples(self, step: int, state: TrainState) -> None:
    self.flush()
    self._each_trial("save_samples", step, state)

  def evaluate(self, step: int, state: TrainState) -> list[dict]:
    """Every trial's evaluation (each written to its run), once per step: the 2-D toys' mode
    coverage of all trials at once, on device; other metrics trial by trial."""
    self.flush()
    if self.evaluated[0] == step:  # asked by the population and by eval_every
      return self.evaluated[1]
    if self._toy_quality:
      n = self.runs[0].config.eval_samples or evaluation.default_num_samples(self.runs[0].config)
      z = np.stack([self.exp.noise(run.keys["eval"], n) for run in self.runs])
      stacked = parallel.to_host(self._toy_quality(state, z))
      in_order = lambda k: {name: stacked[name][k] for name in TOY_METRICS}  # as on the host
      results = [run.write_evaluation(step, in_order(k)) for k, run in enumerate(self.runs)]
    else:
      results = self._each_trial("evaluate", step, state)
    self.evaluated = (step, results)
    return results

  def _each_trial(self, action: str, step: int, state: TrainState) -> list:
    """RunDirectory.`action` of every trial, on its slice of the stacked state."""
    return [getattr(run, action)(step, state) for run, state in zip(self.runs, _trials(state))]


def _trial(tree, k: int):
  return jax.tree.map(lambda x: x[k], tree)


def _trials(state: TrainState) -> list[TrainState]:
  """Each trial's state, as NumPy arrays sliced on the host: slicing the device arrays would
  compile a program for every shape of leaf, and Orbax refuses to save arrays of one process's
  devices in a multi-process job (NumPy arrays it saves from process 0)."""
  host = parallel.to_host(state)
  return [_trial(host, k) for k in range(len(host.step))]


def train_trials(configs, workdirs, names, population=None) -> TrainState:
  """Train configs of one program (group_trials) as one vmapped program, with the exploit and
  explore of a `population` (population.PopulationBasedTraining) if given; returns the final
  state, stacked on the leading trial axis."""
  configs = [config_lib.validated(c) for c in configs]
  first = configs[0]
  mesh = parallel.make_trial_mesh(len(configs), first.parallel.num_devices)
  # this host's trials, and its part of each one's batch
  here, *share = parallel.stacked_share(mesh, len(configs), data.samples_per_batch(first))
  examples = None if first.data.source == "toy" else data.load_for(first)
  datasets = [data.create(configs[k], *share, examples) for k in here]
  for c in configs:
    c.data.shape = datasets[0].shape
  exp = experiment.build(first, mesh)
  sharding = parallel.state_sharding(mesh)
  with StackedRuns(exp, configs, workdirs, names, population) as runs:
    states = runs.restore([exp.init_state(c) for c in configs])
    start = int(jax.device_get(states[0].step))
    # stacked on the host: jnp.stack would compile a program for every shape of leaf
    state = jax.tree.map(lambda *xs: np.stack(xs), *parallel.to_host(states))
    state = jax.device_put(state, sharding)
    keys = np.stack([jax.random.key_data(run.keys["train"]) for run in runs.runs])
    keys = jax.random.wrap_key_data(jax.device_put(keys, sharding))
    del states
    runs.open(start)
    streams = [data.prefetch(d, start, first.train.num_steps) for d in datasets]
    stack = lambda *trial_batches: jax.tree.map(lambda *b: np.stack(b), *trial_batches)
    batches = map(lambda *trial_batches: exp.shard_batch(stack(*trial_batches)), *streams)
    return train.loop(first, runs, exp.step, state, keys, batches, start, runs.adapt)


def train_one_after_another(configs, workdirs) -> None:
  """Train configs of one program one after another, on one compiled step (and one load of the
  examples)."""
  configs = [config_lib.validated(c) for c in configs]
  first = configs[0]
  examples = None if first.data.source == "toy" else data.load_for(first)
  exp = None
  for config, workdir in zip(configs, workdirs):
    if exp is None:
      config.data.shape = data.create(config, 0, 1, examples).shape
      exp = experiment.build(config, parallel.make_mesh(config.parallel.num_devices))
    train.train_and_evaluate(config, workdir, exp, examples)


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
  strategy: str = "grid",
  process: tuple[int, int] = (0, 1),
) -> list[dict]:
  """Train every trial not yet finished; returns the summary rows (also in sweep.csv), best
  first by the sweep's quality metric.

  `process` = (p, P): the sweep is split over P processes (hosts) that share the workdir's
  filesystem, each running this with its own p. Process p trains trials p, p + P, p + 2P, ... and
  writes their run directories; once every trial is finished, process 0 writes the summary and
  returns its rows (the others return []).

  In a jax.distributed job (jax.process_count() > 1, `process` = (0, 1)) every process runs
  every program together: stacked trials are split over all processes' devices along the trial
  axis, a trial alone is data-parallel over them; JAX's process 0 writes the run directories and
  the summary.

  strategy "grid" trains every trial to the end; "pbt" and "halving" as gan_jax.population says.
  Trials of one program share one compiled step, stacked when `vectorize`, else one after
  another. vectorize=None: on accelerators only (on XLA:CPU a vmapped convolution with per-trial
  weights becomes a grouped convolution, slower than the trials one after another;
  benchmarks/NOTES.md). Population-based training is always one vectorised program.
  """
  if vectorize is None:
    vectorize = jax.default_backend() != "cpu"
  config_lib.validate(base)
  quality = ranking.quality(base)
  if strategy != "grid" and quality is None:
    raise UserError(
      f"--strategy={strategy} ranks trials by a metric: set config.eval_classifier=DIR for "
      "image metrics (python -m gan_jax.classifier trains one)"
    )
  configs = [trial_config(base, t) for t in trials]
  for c in configs:
    config_lib.validate(c)  # before anything is written
    if quality and not c.eval_every:
      c.eval_every = c.train.num_steps  # measure the metric at the end
  groups = group_trials(configs, True, len(configs) if strategy == "pbt" else max_stack)
  process, processes = process
  if strategy == "pbt" and (processes > 1 or jax.process_count() > 1):
    raise UserError(
      "--strategy=pbt exchanges states between trials of one program, on one host: run it "
      "without --multihost"
    )
  if strategy == "pbt":
    population.perturbable_fields(trials)
    if len(groups) > 1:
      raise UserError(
        "--strategy=pbt trains the population as one program: its trials may differ only in "
        f"the seed and numbers ({', '.join(vector_fields())})"
      )
  names = trial_names(len(trials))
  workdirs = [os.path.join(workdir, n) for n in names]
  os.makedirs(workdir, exist_ok=True)
  record = _open_record(workdir, names, trials, strategy)

  def train_group(group: list[int], group_configs) -> None:
    mine = [(i, c) for i, c in zip(group, group_configs) if i % processes == process]
    todo = [(i, c) for i, c in mine if not _finished(c, workdirs[i])]
    if todo:
      train_trials_of_group(todo, group, group_configs)
    if jax.process_index() == 0:  # the process that wrote the run directories
      for i, c in mine:  # for the other processes of a multi-host sweep (_wait_for)
        open(_done_marker(workdirs[i], c.train.num_steps), "w").close()

  def train_trials_of_group(todo, group, group_configs) -> None:
    if strategy == "pbt":  # the population moves as one
      todo = list(zip(group, group_configs))
    stacked = strategy == "pbt" or (vectorize and len(todo) > 1)
    shown = ", ".join(names[i] for i, _ in todo)
    print(f"training {shown}{' vectorised' if stacked else ''}", flush=True)
    tic = time.perf_counter()
    todo_configs, todo_dirs = [c for _, c in todo], [workdirs[i] for i, _ in todo]
    if strategy == "pbt":
      population = PopulationBasedTraining(base, quality, names, trials, workdir)
      train_trials(todo_configs, todo_dirs, names, population)
    elif stacked:
      train_trials(todo_configs, todo_dirs, [names[i] for i, _ in todo])
    else:
      train_one_after_another(todo_configs, todo_dirs)
    seconds = time.perf_counter() - tic
    for i, c in todo:
      timing = record["timing"].setdefault(names[i], {"seconds": 0.0, "steps": 0})
      timing["seconds"] += seconds / (1 if stacked else len(todo))
      timing["steps"] = c.train.num_steps
      timing["trials_in_program"] = len(todo) if stacked else 1
    _save_record(workdir, record, process)

  def train_all() -> None:
    if strategy == "pbt":
      train_group(groups[0], configs)
    elif strategy == "halving":

      def train_to(alive, rung_configs):
        by_index = dict(zip(alive, rung_configs))
        for group in group_trials(rung_configs, True, max_stack):
          train_group([alive[j] for j in group], [by_index[alive[j]] for j in group])
        # the other processes' trials too, before ranking them
        _wait_for([workdirs[i] for i in alive], rung_configs[0].train.num_steps)

      record["halving"] = successive_halving(configs, names, workdirs, quality, train_to)
      _save_record(workdir, record, process)
    else:
      for group in groups:
        train_group(group, [configs[i] for i in group])

  train_all()
  if process or jax.process_index():
    return []
  if strategy == "grid":
    _wait_for(workdirs, configs[0].train.num_steps)
  return summarize(workdir, names, trials, quality, record)


def _done_marker(workdir: str, step: int) -> str:
  """A file the sweep writes in a trial's run directory once the trial has trained to `step` and
  closed its run (its last checkpoint, pictures and evaluation written)."""
  return os.path.join(workdir, f"sweep_trained_to_{step}")


def _wait_for(workdirs: list[str], step: int, poll_s: float = 2.0) -> None:
  """Until every run has trained to `step`: other processes train some of them."""
  waiting_since = time.monotonic()
  while True:
    missing = [w for w in workdirs if not os.path.exists(_done_marker(w, step))]
    if not missing:
      return
    if time.monotonic() - waiting_since > 60:
      shown = ", ".join(os.path.basename(w) for w in missing)
      print(f"waiting for {shown} (other processes) to reach step {step}", flush=True)
      waiting_since = time.monotonic()
    time.sleep(poll_s)


def _open_record(workdir: str, names: list[str], trials: list[dict], strategy: str) -> dict:
  """WORKDIR/sweep.json: the trials, the strategy and timings; a rerun must be the same sweep."""
  path = os.path.join(workdir, "sweep.json")
  record = {
    "trials": [{"name": n, "overrides": t} for n, t in zip(names, trials)],
    "strategy": strategy,
    "timing": {},
  }
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old["trials"] != json.loads(json.dumps(record["trials"])):
      raise UserError(f"{workdir} holds another sweep (its trials differ); use a new --workdir")
    if old.get("strategy", "grid") != strategy:
      raise UserError(
        f"{workdir} holds a sweep of --strategy={old.get('strategy', 'grid')}; rerun it with "
        "that strategy or use a new --workdir"
      )
    record["timing"] = old.get("timing", {})
  return record


def _save_record(workdir: str, record: dict, process: int = 0) -> None:
  if process == 0 and jax.process_index() == 0:  # one writer
    path = os.path.join(workdir, "sweep.json")
    reporting.write_atomically(path, json.dumps(record, indent=2))


def summarize(
  workdir: str,
  names: list[str],
  trials: list[dict],
  quality: ranking.Quality | None,
  record: dict,
) -> list[dict]:
  """sweep.csv (one row per trial, best first), summary.md (the settings, each over its seeds,
  best first), sweep.png, TensorBoard's HParams, and for population-based training the lineage
  in sweep.json and lineage.png. Everything written is a function of the trials' metrics, so a
  resumed sweep writes the same files as an uninterrupted one."""
  lineage = population.read_lineage(workdir)
  numbers = population.final_numbers(trials, names, lineage)
  stopped = record.get("halving", {}).get("stopped", {})
  curves = {n: reporting.read_metrics(os.path.join(workdir, n, "metrics.jsonl")) for n in names}
  finals = {n: ranking.final_evaluation(os.path.join(workdir, n)) for n in names}
  fields = sorted({k for t in trials for k in t})
  rows = []
  for name, overrides, final in zip(names, trials, numbers):
    last = {}  # each metric's latest value: the losses' and the evaluation's records differ
    for r in curves[name]:
      last.update(r)
    row = {"trial": name, **{f: overrides.get(f, "") for f in fields}}
    if lineage:
      row |= {f"final {f}": final[f] for f in population.perturbable_fields(trials)}
      row["copies"] = sum(e["trial"] == name for e in lineage)
    if stopped:
      row["stopped at"] = stopped.get(name, "")
    rows.append(
      {**row, "step": last.get("step", ""), **{k: v for k, v in last.items() if k != "step"}}
    )
  if quality:  # halving: the trials that went further first
    rows.sort(key=lambda r: (-r["step"] if stopped else 0, *quality.key(finals[r["trial"]])))
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with open(os.path.join(workdir, "sweep.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
  groups = ranking.settings(trials, names, finals)
  heading = "started as (PBT changed the numbers: sweep.csv)" if lineage else "setting"
  summary = ranking.settings_table(groups, quality, heading) if quality else ""
  reporting.write_atomically(os.path.join(workdir, "summary.md"), summary + "\n")
  metric = quality.metrics[0] if quality else ""
  plotting.save_sweep(groups, metric, curves, os.path.join(workdir, "sweep.png"))
  if lineage:
    plotting.save_lineage(lineage, names, trials, os.path.join(workdir, "lineage.png"))
    record["lineage"] = lineage
    _save_record(workdir, record)
  ranking.write_hparams(workdir, names, numbers, quality)
  return rows
