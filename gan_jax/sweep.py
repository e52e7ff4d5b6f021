"""python -m gan_jax.sweep --config=experiments/dcgan.py --workdir=runs/sweep1 [--config.a.b=v]

Runs every trial of the experiment's `get_sweep(hyper)`, each in WORKDIR/trial_NNN with the run
directory contract of gan_jax.main (gan_jax.trials says which trials share a program), or with
--strategy=pbt|halving only as far as gan_jax.population takes them. Finished trials are skipped
and interrupted ones resume. The trials are ranked by config.sweep.metric: WORKDIR/sweep.csv (every
trial, best first), summary.md (settings over their seeds), sweep.png and TensorBoard's HParams
(`tensorboard --logdir WORKDIR`) summarise the sweep;
with --multihost (the same command on several hosts that share WORKDIR) each process trains its
share of the trials and process 0 writes the summary; with --multihost --coordinator the
processes join one jax.distributed job and train every program together, stacked trials split
over all their devices;
an experiment that reproduces a published table (its `TABLE`, gan_jax.tables) also gets
WORKDIR/table.md, its rows beside the paper's numbers.
"""

import os
import sys

from absl import flags, logging
from ml_collections import config_flags

from gan_jax import UserError
from gan_jax.cli import SUPERVISED, fail, load_config, run, run_in_child, stopped

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "experiment file with get_sweep()", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "sweep directory; an existing one is resumed")
_VECTORIZE = flags.DEFINE_enum(
  "vectorize",
  "auto",
  ["auto", "true", "false"],
  "train trials that share a program together; auto: on accelerators only (on XLA:CPU vmapped "
  "convolutions run slower than one trial after another)",
)
_MAX_STACK = flags.DEFINE_integer("max_stack", 16, "at most this many trials in one program")
_STRATEGY = flags.DEFINE_enum(
  "strategy",
  "grid",
  ["grid", "pbt", "halving"],
  "grid: every trial to the end; pbt: population-based training of the trials as one program "
  "(config.pbt); halving: successive halving (config.halving)",
)

_MULTIHOST = flags.DEFINE_bool(
  "multihost",
  False,
  "one of several processes (hosts) sharing the sweep in the shared --workdir: each trains its "
  "share of the trials (with --coordinator: all of them train every program together); process 0 "
  "summarises",
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator",
  "",
  "with --multihost: join the processes with jax.distributed, HOST:PORT of process 0 ('cluster': "
  "from the cluster's environment, as JAX detects it); stacked trials are then split over every "
  "process's devices and process 0 writes every run directory",
)
_PEER_TIMEOUT = flags.DEFINE_integer(
  "peer_timeout", 60, "with --coordinator: seconds of silence after which a process counts as dead"
)
_PROCESS_ID = flags.DEFINE_integer(
  "process_id", -1, "with --multihost: this process's index (default: from SLURM or Kubernetes)"
)
_NUM_PROCESSES = flags.DEFINE_integer(
  "num_processes", 0, "with --multihost: processes in all (default: from SLURM)"
)


def main(argv: list[str]) -> None:
  base = load_config(argv, _CONFIG, _WORKDIR)
  distributed = _MULTIHOST.value and _COORDINATOR.value
  if _COORDINATOR.value and not _MULTIHOST.value:
    fail("--coordinator joins the processes of a --multihost sweep: add --multihost")
  if distributed and not os.environ.get(SUPERVISED):
    run_in_child("gan_jax.sweep", sys.argv)
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  # after flag parsing: imports JAX
  from gan_jax import compile_cache, cpu, parallel, tables, train, trials

  config_file = config_flags.get_config_filename(flags.FLAGS["config"])
  try:
    cpu.configure(base.parallel.cpu_devices, base.parallel.cpu_async_dispatch)
    compile_cache.enable()
    sweep = trials.load_trials(config_file)
    if distributed:
      coordinator = "" if _COORDINATOR.value == "cluster" else _COORDINATOR.value
      given = (_NUM_PROCESSES.value, _PROCESS_ID.value, _PEER_TIMEOUT.value)
      parallel.initialize_multihost(coordinator, *given)
    process = _process() if _MULTIHOST.value and not distributed else (0, 1)
    vectorize = {"auto": None, "true": True, "false": False}[_VECTORIZE.value]
    rows = trials.run_sweep(
      base, sweep, _WORKDIR.value, vectorize, _MAX_STACK.value, _STRATEGY.value, process
    )
  except UserError as e:
    fail(str(e))
  except train.Stopped as e:
    stopped(e)
  if not rows:  # a multi-host sweep's other processes: process 0 summarises
    return
  with open(f"{_WORKDIR.value}/summary.md") as f:
    best = f.read().strip().splitlines()
  if best:
    print("\n".join(best[:7]))  # the header and the five best settings
    if len(best) > 7:
      print(f"... {len(best) - 7} more settings in {_WORKDIR.value}/summary.md")
  print(f"{len(rows)} trials: {_WORKDIR.value}/sweep.csv, {_WORKDIR.value}/sweep.png")
  table = tables.load(config_file)
  if table:
    print(tables.write(table, _WORKDIR.value, trials.trial_names(len(sweep)), sweep))
    print(f"{_WORKDIR.value}/table.md")


def _process() -> tuple[int, int]:
  """(index, count) of this process: from the flags, else from a SLURM job array, SLURM tasks
  (srun) or a Kubernetes indexed Job (its count from --num_processes)."""
  env = os.environ
  found = (_PROCESS_ID.value, _NUM_PROCESSES.value)
  if "SLURM_ARRAY_TASK_ID" in env:
    first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
    found = (int(env["SLURM_ARRAY_TASK_ID"]) - first, int(env["SLURM_ARRAY_TASK_COUNT"]))
  elif "SLURM_PROCID" in env:
    found = (int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]))
  elif "JOB_COMPLETION_INDEX" in env:
    found = (int(env["JOB_COMPLETION_INDEX"]), _NUM_PROCESSES.value)
  index = _PROCESS_ID.value if _PROCESS_ID.value >= 0 else found[0]
  count = _NUM_PROCESSES.value or found[1]
  if not 0 <= index < count:
    raise UserError(
      "--multihost needs --process_id=I and --num_processes=N with 0 <= I < N, or the "
      "environment of a SLURM job or a Kubernetes indexed Job"
    )
  return index, count


if __name__ == "__main__":
  run(main)
