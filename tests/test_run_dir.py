"""The run directory survives what happens to runs: kills during rewrites, torn lines, a second
process, damaged checkpoints, signals, a full disk, and a start that fails."""

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from gan_jax import UserError, reporting, run_dir, train

from conftest import (
  ROOT,
  TOY_ARGS,
  run_python,
  tiny_dcgan_config,
  tiny_toy_config,
  toy_command_config,
)


def _text(workdir, name="metrics.jsonl"):
  return (pathlib.Path(workdir) / name).read_text()


_KILLED_DURING_REWRITE = """
import json, os, sys
from gan_jax import reporting
real_dumps, count = json.dumps, [0]
def dumps(record, *args, **kwargs):
  count[0] += 1
  if count[0] == 40:
    os._exit(9)   # as kill -9 would, in the middle of the rewrite
  return real_dumps(record, *args, **kwargs)
reporting.json.dumps = dumps
reporting.MetricsLog(sys.argv[1], resume_step=400)
"""


def test_a_kill_while_metrics_are_rewritten_loses_no_row(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps({"step": s, "d_loss": 0.5}) + "\n" for s in range(1, 401)))
  before = path.read_text()
  assert run_python("-c", _KILLED_DURING_REWRITE, path).returncode == 9
  assert path.read_text() == before


def test_a_torn_last_line_is_dropped_and_recomputed(tmp_path, capsys):
  whole, torn = tmp_path / "whole", tmp_path / "torn"
  train.train_and_evaluate(tiny_toy_config(), str(whole))
  train.train_and_evaluate(tiny_toy_config(**{"train.num_steps": 10}), str(torn))
  with open(torn / "metrics.jsonl", "a") as f:
    f.write('{"step": 12, "d_lo')
  train.train_and_evaluate(tiny_toy_config(), str(torn))
  assert "warning: dropped a torn last line" in capsys.readouterr().err
  assert _text(torn) == _text(whole)


def test_a_damaged_config_json_is_one_line(tmp_path):
  train.train_and_evaluate(tiny_toy_config(**{"train.num_steps": 2}), str(tmp_path))
  (tmp_path / "config.json").write_text("")
  with pytest.raises(UserError, match="config.json is damaged"):
    train.train_and_evaluate(tiny_toy_config(), str(tmp_path))
  result = run_python("-m", "gan_jax.sample", f"--workdir={tmp_path}", "--out=x.png")
  assert result.returncode == 2 and "config.json is damaged" in result.stderr


def test_a_second_process_on_a_live_workdir_is_refused(tmp_path):
  workdir = tmp_path / "run"
  first = subprocess.Popen(
    [sys.executable, "-m", "gan_jax.main", *TOY_ARGS, f"--workdir={workdir}",
     "--config.train.num_steps=100000", "--config.log_every=1", "--config.checkpoint_every=100000"],
    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
  try:
    assert "step 1/" in first.stdout.readline()  # training, and holding the lock
    second = run_python("-m", "gan_jax.main", *TOY_ARGS, f"--workdir={workdir}")
    assert second.returncode == 2
    assert f"in use by pid {first.pid} on " in second.stderr, second.stderr
  finally:
    first.kill()
    first.wait()
  # the holder died without unlocking: its lock is stale and taken over
  assert f"pid {first.pid}" in _text(workdir, "lock")
  train.train_and_evaluate(toy_command_config(**{"train.num_steps": 2}), str(workdir))


def test_a_stale_lock_is_taken_over(tmp_path):
  tmp_path.mkdir(exist_ok=True)
  (tmp_path / "lock").write_text("pid 999999 on elsewhere\n")
  train.train_and_evaluate(tiny_toy_config(**{"train.num_steps": 2}), str(tmp_path))
  assert f"pid {os.getpid()}" in _text(tmp_path, "lock")


def _damage(step_dir: pathlib.Path, how: str) -> None:
  data_files = sorted((step_dir / "default" / "ocdbt.process_0" / "d").iterdir())
  if how == "truncated array files":
    for p in data_files:
      p.write_bytes(p.read_bytes()[:100])
  elif how == "deleted array files":
    for p in data_files:
      p.unlink()
  elif how == "garbage metadata":
    (step_dir / "default" / "_METADATA").write_text("not json {")
  elif how == "empty step folder":
    shutil.rmtree(step_dir)
    step_dir.mkdir()


def _checkpointed_config(steps):
  return tiny_toy_config(**{"train.num_steps": steps, "checkpoint_every": 5, "keep_checkpoints": 5})


@pytest.fixture(scope="module")
def uninterrupted_metrics(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("whole")
  train.train_and_evaluate(_checkpointed_config(30), str(workdir))
  return _text(workdir)


@pytest.mark.parametrize(
  "how", ["truncated array files", "deleted array files", "garbage metadata", "empty step folder"]
)
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_good_one(
  how, uninterrupted_metrics, tmp_path, capsys
):
  train.train_and_evaluate(_checkpointed_config(20), str(tmp_path))
  _damage(tmp_path / "checkpoints" / "20", how)
  train.train_and_evaluate(_checkpointed_config(30), str(tmp_path))
  err = capsys.readouterr().err
  assert "warning: checkpoint 20 of" in err and "resuming from an older one" in err
  assert len(list((tmp_path / "damaged_checkpoints").iterdir())) == 1  # kept, not deleted
  assert _text(tmp_path) == uninterrupted_metrics


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_with_a_checkpoint_and_the_run_resumes_exactly(signum, tmp_path):
  stopped = tmp_path / "stopped"
  command = [sys.executable, "-m", "gan_jax.main", *TOY_ARGS, f"--workdir={stopped}",
             "--config.log_every=1", "--config.checkpoint_every=100000"]  # fmt: skip
  run = subprocess.Popen([*command, "--config.train.num_steps=100000"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
  for line in run.stdout:
    if "step 20/" in line:
      break
  run.send_signal(signum)
  out, err = run.communicate(timeout=120)
  assert run.returncode == 128 + signum, err
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith(f"stopped by {signum.name} at step "), err
  step = int(lines[0].split("at step ")[1].split(",")[0])
  assert os.listdir(stopped / "checkpoints") == [str(step)]
  # resumed, and run uninterrupted, in this process (the same program on the same devices)
  config = lambda: toy_command_config(**{"log_every": 1, "train.num_steps": step + 5})
  train.train_and_evaluate(config(), str(stopped))
  train.train_and_evaluate(config(), str(tmp_path / "whole"))
  assert _text(stopped) == _text(tmp_path / "whole")


@pytest.fixture
def small_disk(tmp_path):
  """A 24 MB tmpfs (needs root, as CI and this machine run)."""
  mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
  mount.mkdir()
  made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(mount)],
                        capture_output=True, check=False)  # fmt: skip
  if made.returncode:
    pytest.skip("cannot mount a tmpfs here (not root)")
  yield mount
  subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_keeps_the_checkpoints_before(small_disk):
  """A 2x1024 MLP: one checkpoint (~8 MB) fits, the third does not."""
  workdir = small_disk / "run"
  result = run_python(
    "-m", "gan_jax.main", "--config=experiments/toy_ring.py", f"--workdir={workdir}",
    "--config.model.g_hidden=(1024,1024)", "--config.model.d_hidden=(16,)",
    "--config.train.num_steps=10", "--config.checkpoint_every=1", "--config.keep_checkpoints=10",
    "--config.sample_every=100",
  )  # fmt: skip
  assert result.returncode == 2, result.stderr
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: the disk of"), result.stderr
  kept = sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
  assert kept and kept == list(range(1, len(kept) + 1))
  assert int(run_dir.restore(str(workdir))[1].step) == kept[-1]


def test_a_missing_step_and_a_run_past_num_steps_are_one_line(tmp_path):
  train.train_and_evaluate(tiny_toy_config(), str(tmp_path))
  with pytest.raises(UserError, match="has no checkpoint of step 55"):
    run_dir.restore(str(tmp_path), 55)
  with pytest.raises(UserError, match="is at step 20, past --config.train.num_steps=10"):
    train.train_and_evaluate(tiny_toy_config(**{"train.num_steps": 10}), str(tmp_path))


def test_a_start_that_fails_writes_nothing(tmp_path, shared_data):
  """image_size=30 has no DCGAN; the corrected command then runs on the same workdir."""
  config = lambda size: tiny_dcgan_config(
    **{"data.source": "npz", "data.image_size": size,
       "data.path": str(shared_data / "cifar10" / "test.npz"), "train.num_steps": 1}
  )  # fmt: skip
  with pytest.raises(UserError, match="4\\*2\\^k or 7\\*2\\^k"):
    train.train_and_evaluate(config(30), str(tmp_path))
  assert not (tmp_path / "config.json").exists()
  train.train_and_evaluate(config(32), str(tmp_path))
  assert reporting.read_metrics(str(tmp_path / "metrics.jsonl"))


def test_a_full_disk_met_while_logging_is_one_line_too(tmp_path, monkeypatch):
  """Past the checkpoint's own size check, any write that finds the disk full (here
  metrics.jsonl's) ends as the same UserError."""

  def full(self, record):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(reporting.MetricsLog, "write", full)
  with pytest.raises(UserError, match="the disk of .* is full"):
    train.train_and_evaluate(tiny_toy_config(**{"train.num_steps": 4}), str(tmp_path))
