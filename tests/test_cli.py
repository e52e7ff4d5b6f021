"""The command lines as a user runs them: errors are one line on stderr with exit code 2."""

import numpy as np
import pytest

from conftest import TOY_ARGS, run_python


def run(module, *args):
  return run_python("-m", module, *args)


def _user_lines(stderr):
  return [
    line
    for line in stderr.splitlines()
    if line.strip() and "Warning" not in line and "warn(" not in line
  ]


@pytest.mark.parametrize(
  "args,message",
  [
    (["--config.model.no_such_field=1"], "unknown config field '--config.model.no_such_field'"),
    (["--config.train.num_steps=ten"], "num_steps=ten"),
    (["--config.loss=wgan_typo"], "config.loss='wgan_typo' is not one of"),
    (["--config.model.name=biggan"], "config.model.name='biggan' is not one of"),
    (["--config.augment.policy=color,flip"], "unknown op 'flip'"),
    (["--config.model.num_classes=10"], "num_classes > 0 needs labelled images"),
    (
      ["--config.data.source=tfds", "--config.data.name=mnist", "--config.eval_every=0"],
      "manual_dir=FOLDER",
    ),
    (
      ["--config.data.source=npz", "--config.data.path=/no/such.npz", "--config.eval_every=0"],
      "no such file",
    ),
    (
      [
        "--config.data.source=npz",
        "--config.data.path=x.npz",
        "--config.data.toy_examples=100",
        "--config.eval_every=0",
      ],
      "toy_examples is the 2-D toys' training set",
    ),
    (["--config.optimizer.d.lr=-1e-4"], "config.optimizer.d.lr=-0.0001 must be > 0"),
    (["--config.optimizer.g.b1=1.0"], "config.optimizer.g.b1=1.0 must be in [0, 1)"),
    (["--config.loss=wgan_gp", "--config.model.d_norm=batch"], "a BatchNorm critic mixes"),
    (["--config.r1_gamma=1.0", "--config.model.d_norm=batch"], "a BatchNorm critic mixes"),
    (["--config.pac=0"], "config.pac=0 must be > 0"),
    (["--config.g_steps=0"], "config.g_steps=0 must be > 0"),
    (["--config.model.noise=gauss"], "config.model.noise='gauss' is not one of normal, uniform"),
    (
      ["--config.model.name=tf_dcgan", "--config.model.d_spectral_norm=true"],
      "model tf_dcgan has no spectral norm",
    ),
    (["--config.unroll_steps=3", "--config.optimizer.d.name=rmsprop"], "optimizer.d.name=adam"),
  ],
)
def test_user_errors_are_one_line(args, message, tmp_path):
  result = run(
    "gan_jax.main",
    *TOY_ARGS,
    f"--workdir={tmp_path / 'run'}",
    f"--config.data.data_dir={tmp_path / 'tfds'}",
    *args,
  )
  assert result.returncode == 2
  lines = _user_lines(result.stderr)
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  result = run("gan_jax.main", *TOY_ARGS, f"--workdir={blocker / 'run'}")
  assert result.returncode == 2 and "cannot create workdir" in result.stderr


def test_train_resume_and_sample(tmp_path):
  workdir = tmp_path / "run"
  first = run(
    "gan_jax.main",
    *TOY_ARGS,
    f"--workdir={workdir}",
    "--config.train.num_steps=4",
    "--config.log_every=2",
    "--config.checkpoint_every=2",
  )
  assert first.returncode == 0, first.stderr
  assert "step 4/4 | d_loss" in first.stdout
  again = run(
    "gan_jax.main",
    *TOY_ARGS,
    f"--workdir={workdir}",
    "--config.train.num_steps=6",
    "--config.log_every=2",
    "--config.checkpoint_every=2",
  )
  assert again.returncode == 0, again.stderr
  assert "step 2/6" not in again.stdout and "step 6/6" in again.stdout  # resumed at 4
  png, npy = tmp_path / "grid.png", tmp_path / "samples.npy"
  assert run("gan_jax.sample", f"--workdir={workdir}", "--num=50", f"--out={png}").returncode == 0
  assert png.stat().st_size > 0
  result = run("gan_jax.sample", f"--workdir={workdir}", "--num=30", f"--out={npy}")
  assert result.returncode == 0 and "step 6" in result.stdout
  samples = np.load(npy)
  assert samples.shape == (30, 2) and samples.dtype == np.float32
  missing = run("gan_jax.sample", f"--workdir={tmp_path / 'none'}", "--out=x.png")
  assert missing.returncode == 2 and "not a run directory" in missing.stderr
  for module, flag, message in [
    ("gan_jax.sample", "--num=0", "--num=0 must be > 0"),
    ("gan_jax.sample", "--num=-5", "--num=-5 must be > 0"),
    ("gan_jax.sample", f"--out={tmp_path / 'no' / 'x.png'}", "its folder does not exist"),
    ("gan_jax.evaluate", "--num_samples=0", "--num_samples=0 must be > 0"),
    ("gan_jax.evaluate", "--num_samples=-5", "--num_samples=-5 must be > 0"),
  ]:
    result = run(module, f"--workdir={workdir}", flag)
    lines = _user_lines(result.stderr)
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (flag, result.stderr)


@pytest.mark.parametrize(
  "args,message",
  [
    (["--config.sweep.metric=sharpness"], "unknown metric 'sharpness'"),
    (["--multihost"], "--multihost needs --process_id=I and --num_processes=N"),
    (["--coordinator=localhost:1234"], "--coordinator joins the processes of a --multihost sweep"),
  ],
)
def test_sweep_errors_are_one_line(args, message, tmp_path):
  """The command's contract; the other sweep errors: tests/test_sweep.py."""
  result = run(
    "gan_jax.sweep", "--config=experiments/toy_ring.py", f"--workdir={tmp_path}/s", *args
  )
  assert result.returncode == 2
  lines = _user_lines(result.stderr)
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
  assert not (tmp_path / "s").exists()  # nothing written


_ENDING = """
import atexit, concurrent.futures, sys, threading, time
from gan_jax import cli

class Teardown:
  def __del__(self):
    print("teardown", flush=True)

kept = Teardown()
atexit.register(print, "atexit", flush=True)

def main(argv):
  worker = threading.Thread(target=lambda: (time.sleep(0.5), print("thread", flush=True)))
  worker.start()
  pool = concurrent.futures.ThreadPoolExecutor(1)  # left open, as a library may leave one
  pool.submit(lambda: (time.sleep(0.25), print("pool", flush=True)))
  print("main", flush=True)
  return int(sys.argv[1])

cli.run(main)
"""


@pytest.mark.parametrize("status", [0, 3])
def test_a_command_ends_after_its_threads_and_atexit_handlers_without_module_teardown(status):
  """A command's process waits for its threads (an executor's too) and runs the atexit handlers,
  as Python's own exit does, then ends with main's status, skipping the teardown of the imported
  modules."""
  out = run_python("-c", _ENDING, status, timeout=60)
  assert out.stdout.split() == ["main", "pool", "thread", "atexit"], out.stdout + out.stderr
  assert out.returncode == status


def test_compiled_programs_are_kept_on_disk_for_the_next_run(tmp_path, monkeypatch):
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")  # the suite's own cache: as a user has none
  cache = tmp_path / "cache"
  monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
  args = [*TOY_ARGS, "--config.train.num_steps=2", "--config.eval_every=0"]
  first = run("gan_jax.main", *args, f"--workdir={tmp_path / 'a'}")
  assert first.returncode == 0, first.stderr
  (kept,) = (cache / "gan_jax" / "jit").iterdir()  # one folder for this host's CPU
  (step,) = kept.glob("jit_train_step-*-atime")  # when the program was last used
  used = step.read_bytes()
  again = run("gan_jax.main", *args, f"--workdir={tmp_path / 'b'}")
  assert again.returncode == 0, again.stderr
  # read back (its last use is new), not compiled again under another key (a second entry)
  assert step.read_bytes() != used and len(list(kept.glob("jit_train_step-*"))) == 2
  assert (tmp_path / "a" / "metrics.jsonl").read_text() == (
    tmp_path / "b" / "metrics.jsonl"
  ).read_text()
  blocker = tmp_path / "file"  # a cache folder that cannot be made: the run goes on without
  blocker.write_text("not a folder")
  monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
  unwritable = run("gan_jax.main", *args, f"--workdir={tmp_path / 'c'}")
  assert unwritable.returncode == 0 and "cache" not in unwritable.stderr, unwritable.stderr
