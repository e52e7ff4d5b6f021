"""Multi-host training for real: 2 processes on this machine (JAX's coordinator on localhost, CPU
collectives over gloo), 2 CPU devices each, against 1 process with 4 devices; and a sweep split
over 2 processes, as independent copies and as one jax.distributed job, against the same sweep in
one."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from gan_jax import config as config_lib
from gan_jax import hyper, reference, train, trials

from conftest import ROOT, TOY_ARGS, toy_command_config

LOGGING = [
  "--config.log_every=1",
  "--config.checkpoint_every=5",
  "--config.sample_every=5",
  "--config.num_samples=16",
]


def _env():
  """Without the tests' 4 forced host devices: each process sets its own count."""
  return {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start(workdir, *args):
  """The two processes of a multi-host run."""
  command = [sys.executable, "-m", "gan_jax.main", *TOY_ARGS, *LOGGING, f"--workdir={workdir}"]
  return _processes([*command, *args, "--config.parallel.cpu_devices=2", "--peer_timeout=15"])


def _processes(command, coordinated: bool = True):
  """`command` as the two processes of a multi-host job, on a local coordinator if
  `coordinated`."""
  command = [*command, "--multihost", "--num_processes=2"]
  if coordinated:
    command.append(f"--coordinator=localhost:{_free_port()}")
  return [
    subprocess.Popen(
      [*command, f"--process_id={i}"],
      cwd=ROOT,
      env=_env(),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]


def _finish(runs, timeout=300):
  outputs = [run.communicate(timeout=timeout) for run in runs]
  for run, (_, err) in zip(runs, outputs):
    assert run.returncode == 0, err[-3000:]
  return outputs


def test_two_processes_train_as_one_process_with_four_devices(tmp_path):
  """The one-process run is this test process's, on its 4 devices."""
  two, one = tmp_path / "two", tmp_path / "one"
  config = lambda **fields: toy_command_config(
    **{"log_every": 1, "checkpoint_every": 5, "sample_every": 5, "num_samples": 16, **fields}
  )
  _finish(_start(two, "--config.train.num_steps=10"))
  train.train_and_evaluate(config(**{"train.num_steps": 10}), str(one))
  assert sorted(os.listdir(two / "checkpoints")) == ["10", "5"]
  assert sorted(os.listdir(two / "samples")) == ["step_0000005.png", "step_0000010.png"]
  # resumed by both processes, with evaluations every 5 steps
  more = ["--config.train.num_steps=15", "--config.eval_every=5", "--config.eval_samples=200"]
  _finish(_start(two, *more))
  train.train_and_evaluate(
    config(**{"train.num_steps": 15, "eval_every": 5, "eval_samples": 200}), str(one)
  )
  a, b = reference.load(str(two)), reference.load(str(one))
  agree, lines = reference.compare(a, b, ["d_loss", "g_loss", "d_grad_norm"], 1e-5, 1e-6)
  assert agree, lines
  evals = [r for r in a if "eval/modes" in r]
  assert [r["step"] for r in evals] == [15]
  assert [r["step"] for r in a if "d_loss" in r] == list(range(1, 16))
  np.testing.assert_equal(evals, [r for r in b if "eval/modes" in r])


def test_a_dead_process_stops_the_other_with_one_line(tmp_path):
  survivor, victim = _start(tmp_path / "run", "--config.train.num_steps=1000000")
  for line in survivor.stdout:
    if "step 20/" in line:
      break
  subprocess.run(["pkill", "-9", "-P", str(victim.pid)], check=False)  # the training child
  tic = time.perf_counter()
  _, err = survivor.communicate(timeout=120)
  assert time.perf_counter() - tic < 60
  lines = [line for line in err.splitlines() if line.strip()]
  assert survivor.returncode == 2 and len(lines) == 1, err[-3000:]
  assert lines[0].startswith("error: another process of this multi-host run stopped")
  victim.communicate(timeout=60)
  assert victim.returncode == 128 + signal.SIGKILL


SWEEP_EXPERIMENT = """
from gan_jax.config import toy_config


def get_config():
  c = toy_config("ring8")
  c.model.g_hidden, c.model.d_hidden, c.model.init_std = (16,), (16,), 0.0
  c.train.batch_size, c.train.num_steps, c.log_every = 8, 6, 2
  c.sample_every, c.checkpoint_every, c.num_samples, c.eval_samples = 6, 6, 16, 200
  c.parallel.cpu_devices = 1
  return c


def get_sweep(hyper):
  return hyper.product(hyper.sweep("optimizer.d.lr", [1e-4, 1e-3]), hyper.sweep("seed", [0, 1]))
"""


def test_a_sweep_over_two_processes_equals_the_sweep_in_one(tmp_path):
  """Each process trains its trials (0 and 2, or 1 and 3) and writes only their run directories;
  process 0 waits for the other's, then writes the summary: the same files as one process's sweep
  of the same trials."""
  experiment = tmp_path / "sweep4.py"
  experiment.write_text(SWEEP_EXPERIMENT)
  sweep = [sys.executable, "-m", "gan_jax.sweep", f"--config={experiment}"]
  runs = _processes([*sweep, f"--workdir={tmp_path / 'two'}"], coordinated=False)
  outputs = _finish(runs)
  # the same sweep in this process, on one of its devices
  module = config_lib.experiment_module(experiment)
  config = module.get_config()
  config.parallel.num_devices = 1
  trials.run_sweep(config, module.get_sweep(hyper), str(tmp_path / "one"), vectorize=False)
  assert "| rank |" in outputs[0][0] and "| rank |" not in outputs[1][0]  # summarised once
  for k in range(4):
    trial = f"trial_{k:03d}"
    owner = (tmp_path / "two" / trial / "lock").read_text()
    assert owner.startswith(f"pid {runs[k % 2].pid} "), (trial, owner)
    metrics = [(tmp_path / run / trial / "metrics.jsonl").read_text() for run in ("two", "one")]
    assert metrics[0] == metrics[1] and "eval/modes" in metrics[0], trial
  for name in ("sweep.csv", "summary.md"):
    assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text()


def test_a_sweep_joined_by_jax_distributed_equals_the_sweep_in_one(tmp_path):
  """With --coordinator the two processes are one jax.distributed job: the 4 stacked trials are
  split over both processes' devices (one each, 2 trials per device), process 0 writes every run
  directory, and the rerun resumes from the checkpoints saved for the job. Trained 6 steps and
  resumed to 12, each trial's metrics equal those of one process's vectorised sweep of the same
  trials trained straight to 12 on 2 devices, byte for byte (but for the evaluation at the end of
  the first command)."""
  experiment = tmp_path / "sweep4.py"
  experiment.write_text(SWEEP_EXPERIMENT)
  sweep = [sys.executable, "-m", "gan_jax.sweep", f"--config={experiment}", "--vectorize=true"]
  sweep.append(f"--workdir={tmp_path / 'two'}")
  outputs = _finish(_processes(sweep))
  assert "| rank |" in outputs[0][0] and "| rank |" not in outputs[1][0]  # summarised once
  _finish(_processes([*sweep, "--config.train.num_steps=12"]))
  module = config_lib.experiment_module(experiment)
  config = module.get_config()
  config.parallel.num_devices, config.train.num_steps = 2, 12
  trials.run_sweep(config, module.get_sweep(hyper), str(tmp_path / "one"), vectorize=True)
  for k in range(4):
    trial = f"trial_{k:03d}"
    assert sorted(os.listdir(tmp_path / "two" / trial / "checkpoints")) == ["12", "6"]
    lines = [(tmp_path / run / trial / "metrics.jsonl").read_text() for run in ("two", "one")]
    first_end = '{"step": 6, "eval/'
    lines[0] = "".join(r for r in lines[0].splitlines(True) if not r.startswith(first_end))
    assert lines[0] == lines[1] and '{"step": 12, "eval/modes"' in lines[0], trial
  for name in ("sweep.csv", "summary.md"):
    assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text()
