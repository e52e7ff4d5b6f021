"""python -m gan_jax.sweep --config=experiments/dcgan.py --workdir=runs/sweep1 [--config.a.b=v]

Runs every trial of the experiment's `get_sweep(hyper)`, each in WORKDIR/trial_NNN with the run
directory contract of gan_jax.main. Trials that differ only in numbers (VECTOR_FIELDS) are trained
together as one vmapped program; the others fall back to programs of their own. Finished trials are
skipped and interrupted ones resume. WORKDIR/sweep.csv and WORKDIR/sweep.png summarise the sweep.
"""

import csv
import json
import os
import time

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import UserError, hyper
from gan_jax.cli import fail, parse_flags
from gan_jax.config import experiment_module

FLAGS = flags.FLAGS


# Numbers the step reads from its state, so trials differing only in them share one program.
VECTOR_FIELDS = ("seed", "clip_value", "gp_weight", "r1_gamma", "ema_decay") + tuple(
    f"optimizer.{net}.{k}" for net in "gd" for k in ("lr", "b1", "b2", "rms_decay"))


def load_trials(config_file: str) -> list[dict]:
  module = experiment_module(config_file)
  if not hasattr(module, "get_sweep"):
    raise UserError(f"{config_file} defines no get_sweep(hyper)")
  trials = module.get_sweep(hyper)
  if not trials:
    raise UserError(f"get_sweep() of {config_file} returned no trials")
  return trials


def trial_config(base: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(base.to_dict())
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
  from gan_jax.config import flatten
  flat = {k: v for k, v in flatten(config.to_dict()).items() if k not in VECTOR_FIELDS}
  flat["code_paths"] = [config.clip_value > 0, config.r1_gamma > 0]   # branches, not numbers
  return json.dumps(flat, sort_keys=True)


def group_trials(configs, vectorize: bool, max_stack: int) -> list[list[int]]:
  if not vectorize:
    return [[i] for i in range(len(configs))]
  groups: dict[str, list[int]] = {}
  for i, c in enumerate(configs):
    groups.setdefault(program_key(c), []).append(i)
  return [g[s:s + max_stack] for g in groups.values() for s in range(0, len(g), max_stack)]


def _finished(config, workdir: str) -> bool:
  from gan_jax import checkpointing
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return False
  mngr = checkpointing.manager(workdir, config.keep_checkpoints)
  try:
    return mngr.latest_step() == config.train.num_steps
  finally:
    mngr.close()


def run_sweep(base: ml_collections.ConfigDict, trials: list[dict], workdir: str,
              vectorize: bool | None = True, max_stack: int = 16) -> list[dict]:
  """Train every trial not yet finished; returns the summary rows (also in sweep.csv).

  vectorize=None: on accelerators only (benchmarks/NOTES.md: on XLA:CPU a vmapped DCGAN step runs
  at 0.36x the trials-per-second of one trial after another).
  """
  import jax
  from gan_jax import train
  if vectorize is None:
    vectorize = jax.default_backend() != "cpu"
  configs = [trial_config(base, t) for t in trials]
  names = [f"trial_{i:03d}" for i in range(len(trials))]
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
    todo = [i for i in group if not _finished(configs[i], os.path.join(workdir, names[i]))]
    if not todo:
      continue
    print(f"training {', '.join(names[i] for i in todo)}"
          f"{' vectorised' if len(todo) > 1 else ''}", flush=True)
    tic = time.perf_counter()
    train.train_trials([configs[i] for i in todo], [os.path.join(workdir, names[i]) for i in todo],
                       [names[i] for i in todo] if len(todo) > 1 else None)
    seconds = time.perf_counter() - tic
    for i in todo:
      record["timing"][names[i]] = {"seconds": seconds, "trials_in_program": len(todo)}
    with open(record_path, "w") as f:
      json.dump(record, f, indent=2)
  rows = summarize(workdir, names, trials, record["timing"])
  return rows


def summarize(workdir: str, names: list[str], trials: list[dict], timing: dict) -> list[dict]:
  """sweep.csv (one row per trial) and sweep.png (every trial's loss curves)."""
  from gan_jax import plotting, reporting
  rows, curves = [], {}
  fields = sorted({k for t in trials for k in t})
  for name, overrides in zip(names, trials):
    records = reporting.read_metrics(os.path.join(workdir, name, "metrics.jsonl"))
    curves[name] = records
    last = records[-1] if records else {}
    with open(os.path.join(workdir, name, "config.json")) as f:
      steps = json.load(f)["train"]["num_steps"]
    t = timing.get(name, {})
    rows.append({"trial": name, **{f: overrides.get(f, "") for f in fields},
                 "step": last.get("step", ""),
                 **{k: v for k, v in last.items() if k != "step"},
                 "steps_per_sec": round(steps / t["seconds"], 3) if t else "",
                 "trials_in_program": t.get("trials_in_program", "")})
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with open(os.path.join(workdir, "sweep.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
  plotting.save_overlay(curves, os.path.join(workdir, "sweep.png"))
  return rows


def _define_flags() -> None:
  """Only when run as a program: importing this module for its functions defines no flags."""
  config_flags.DEFINE_config_file("config", None, "experiment file with get_sweep()",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "sweep directory; an existing one is resumed")
  flags.DEFINE_enum("vectorize", "auto", ["auto", "true", "false"],
                    "train trials that share a program together; auto: on accelerators only "
                    "(on XLA:CPU vmapped convolutions run slower than one trial after another)")
  flags.DEFINE_integer("max_stack", 16, "at most this many trials in one program")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if FLAGS.config is None or not FLAGS.workdir:
    fail("both --config=experiments/NAME.py and --workdir=DIR are required")
  try:
    base = ml_collections.ConfigDict(FLAGS.config.to_dict())
  except Exception as e:
    fail(f"cannot load --config: {str(e).strip().splitlines()[-1].strip()}")
  logging.set_verbosity(logging.ERROR)
  try:
    from gan_jax import parallel   # imports JAX, which the flag parsing above must precede
    parallel.configure_cpu(base.parallel.cpu_devices, base.parallel.cpu_async_dispatch)
    trials = load_trials(config_flags.get_config_filename(flags.FLAGS["config"]))
    vectorize = {"auto": None, "true": True, "false": False}[FLAGS.vectorize]
    rows = run_sweep(base, trials, FLAGS.workdir, vectorize, FLAGS.max_stack)
  except UserError as e:
    fail(str(e))
  print(f"{len(rows)} trials: {FLAGS.workdir}/sweep.csv, {FLAGS.workdir}/sweep.png")


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=parse_flags)
