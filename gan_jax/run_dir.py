"""A run directory: what one run writes as it trains (config.json, metrics.jsonl, TensorBoard,
checkpoints, sample pictures, evaluations), and a finished or interrupted run read back."""

import errno
import fcntl
import json
import math
import os
import shutil
import socket
import sys
import time

import jax
import ml_collections
import numpy as np

from gan_jax import UserError, checkpointing, data, experiment, parallel, plotting, reporting
from gan_jax import config as config_lib
from gan_jax.metrics import evaluation
from gan_jax.train_step import TrainState


def _prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuse a workdir of another experiment; then record the resolved config."""
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    config_lib.check_same_experiment(read_config(workdir).to_dict(), config)
  reporting.write_atomically(path, json.dumps(config.to_dict(), indent=2, sort_keys=True))


def _lock(workdir: str):
  """Hold workdir/lock for this process (released when it exits, however it exits); refuse a
  workdir that another live process holds, naming it."""
  f = open(os.path.join(workdir, "lock"), "a+")  # noqa: SIM115 (held while the run lasts)
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    f.seek(0)
    holder = f.read().strip() or "another process"
    f.close()
    raise UserError(
      f"workdir {workdir!r} is in use by {holder}; wait for it to finish or stop "
      "it, or use another --workdir"
    ) from e
  f.seek(0)
  f.truncate()
  f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
  f.flush()
  return f


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory (no config.json)")
  with open(path) as f:
    try:
      return config_lib.from_saved(json.load(f))
    except json.JSONDecodeError as e:
      raise UserError(f"{path} is damaged ({e}); restore it from the experiment file") from e


def restore(workdir: str, step: int | None = None) -> tuple[experiment.Experiment, TrainState]:
  """The experiment of a run directory (on one device) and its checkpoint at `step` (default:
  the latest)."""
  exp = experiment.build(read_config(workdir), parallel.make_mesh(1))
  mngr = checkpointing.manager(workdir, exp.config.keep_checkpoints)
  try:
    steps = mngr.all_steps()
    if step is not None and step not in steps:
      raise UserError(f"{workdir} has no checkpoint of step {step} (it has {sorted(steps)})")
    state = checkpointing.restore(mngr, exp.init_state(), step)
  finally:
    mngr.close()
  if state is None:
    raise UserError(f"no checkpoint in {workdir}/checkpoints")
  return exp, state


_DISK_MARGIN = 4 << 20  # Orbax's metadata and the run's logs, beside the arrays


def _disk_full(error: BaseException | None) -> bool:
  """Whether `error`, or one it came from, says the disk is full (Orbax's TensorStore reports it
  as RESOURCE_EXHAUSTED in a ValueError)."""
  while error is not None:
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


class RunDirectory:
  """One run's directory while it trains: `config` is the run's own (a trial's, in a sweep).

  `record` takes each step's metrics as device arrays and reads them one step later; a checkpoint
  or an evaluation first reads what is pending, so a checkpoint is written only after its step's
  losses were checked, and metrics.jsonl stays in step order.
  """

  def __init__(
    self,
    exp: experiment.Experiment,
    config: ml_collections.ConfigDict,
    workdir: str,
    name: str = "",
  ):
    self.exp, self.config, self.workdir = exp, config, workdir
    self.is_chief = jax.process_index() == 0
    try:
      os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    except OSError as e:
      raise UserError(f"cannot create workdir {workdir!r}: {e.strerror}") from e
    if not os.access(workdir, os.W_OK):
      raise UserError(f"workdir {workdir!r} is not writable")
    self.lock = _lock(workdir) if self.is_chief else None
    try:
      if self.is_chief:
        _prepare(config, workdir)
      self.mngr = checkpointing.manager(workdir, config.keep_checkpoints)
    except BaseException:
      self._unlock()
      raise
    self.keys = experiment.run_keys(config.seed)
    self.prefix = f"[{name}] " if name else ""
    self.noise = exp.noise(self.keys["samples"], config.num_samples)
    # a conditional grid has one row per class
    classes = config.model.num_classes
    self.grid_cols = max(1, config.num_samples // classes) if classes else 0
    self.grid_labels = np.repeat(np.arange(classes), self.grid_cols) if classes else None
    if classes:
      self.noise = self.noise[: len(self.grid_labels)]
    self.modes = data.toy_modes(config.data)
    self.metrics = reporting.OneStepBehind(self.write_metrics)
    self.log = self.writer = None

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, traceback) -> None:
    """Finish the checkpoint in flight and close; a full disk becomes one UserError."""
    try:
      self.mngr.wait_until_finished()
    except Exception as e:
      exc = exc or e
    if self.writer:
      self.writer.close()
    self._unlock()
    if _disk_full(exc):
      # Not closing the manager: its close stops the event loop that TensorStore's threads
      # still report the failed writes to, and each would print a traceback.
      raise UserError(
        f"the disk of {self.workdir} is full; the checkpoints written before are "
        "intact: free space and rerun the command to resume"
      ) from exc
    self.mngr.close()
    if exc is not None and exc_type is None:
      raise exc

  def _unlock(self) -> None:
    if self.lock:
      self.lock.close()
      self.lock = None

  def latest_step(self) -> int | None:
    return self.mngr.latest_step()

  def restore(self, like: TrainState, at_most: int | None = None) -> TrainState | None:
    """The newest checkpoint (of a step <= at_most) that restores, shaped like `like`; None
    without one. A damaged checkpoint is moved to workdir/damaged_checkpoints/, never deleted,
    with a warning, and the next older one is tried."""
    folders = os.listdir(os.path.join(self.workdir, "checkpoints"))
    for step in {int(f) for f in folders if f.isdigit()} - set(self.mngr.all_steps()):
      self._set_aside(step, "is incomplete (Orbax does not list it)")
    for step in sorted(self.mngr.all_steps(), reverse=True):
      if at_most is not None and step > at_most:
        continue
      try:
        return checkpointing.restore(self.mngr, like, step)
      except Exception as e:  # TensorStore and Orbax raise many kinds for damaged files
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        self._set_aside(step, f"does not restore ({reason})")
    return None

  def _set_aside(self, step: int, why: str) -> None:
    aside = os.path.join(self.workdir, "damaged_checkpoints", f"{step}_{int(time.time())}")
    os.makedirs(os.path.dirname(aside), exist_ok=True)
    os.replace(os.path.join(self.workdir, "checkpoints", str(step)), aside)
    # A new manager: a failed restore can leave the old one unable to save.
    self.mngr.close()
    self.mngr = checkpointing.manager(self.workdir, self.config.keep_checkpoints)
    print(
      f"warning: checkpoint {step} of {self.workdir} {why}; moved it to {aside}, resuming "
      "from an older one",
      file=sys.stderr,
    )

  def open(self, step: int) -> None:
    """Start writing at `step`: the metrics log keeps what came before it."""
    path = os.path.join(self.workdir, "metrics.jsonl")
    self.log = reporting.MetricsLog(path, step) if self.is_chief else None
    self.writer = (
      reporting.TensorBoardWriter(os.path.join(self.workdir, "tensorboard"))
      if self.is_chief
      else None
    )
    self.progress = reporting.Progress(step, self.config.train.num_steps, self.prefix)

  def record(self, step: int, metrics) -> None:
    self.metrics.push(step, metrics)

  def flush(self) -> None:
    self.metrics.flush()

  def write_metrics(self, step: int, metrics: dict) -> None:
    """Check a step's metrics, then log them every log_every steps."""
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
      last = self.mngr.latest_step()
      kept = (
        f"the last good checkpoint is step {last}"
        if last is not None
        else "no checkpoint was saved"
      )
      raise UserError(f"{self.prefix}non-finite {', '.join(bad)} at step {step}; stopped, {kept}")
    if step % self.config.log_every == 0 and self.is_chief:
      self.log.write({"step": step, **metrics})
      metrics["steps_per_sec"] = self.progress.report(step, metrics)
      self.writer.write_scalars(step, metrics)

  def save_checkpoint(self, step: int, state: TrainState) -> None:
    """Save `state` once its step's metrics were checked, and only where it fits: a checkpoint
    cut short by a full disk would fail late, in Orbax's writer threads."""
    self.flush()
    self.mngr.wait_until_finished()  # the previous checkpoint's bytes are on disk
    need = sum(x.nbytes for x in jax.tree.leaves(state)) + _DISK_MARGIN
    free = shutil.disk_usage(self.mngr.directory).free
    if free < need:
      raise UserError(
        f"the disk of {self.workdir} is full: the checkpoint of step {step} needs "
        f"{need / 2**20:.0f} MB, {free / 2**20:.0f} MB are free; the checkpoints written before "
        "are intact: free space and rerun the command to resume"
      )
    checkpointing.save(self.mngr, state)

  def save_samples(self, step: int, state: TrainState) -> None:
    self.flush()  # no pictures of a state whose step's metrics are not finite
    # every process runs G on the global state
    samples = self.exp.sample(state, self.noise, self.grid_labels)
    # Drawn beside Orbax's writer threads, matplotlib ran at half speed (the GIL): a checkpoint of
    # the same step is finished first.
    self.mngr.wait_until_finished()
    if not self.is_chief:
      return
    path = os.path.join(self.workdir, "samples", f"step_{step:07d}.png")
    plotting.save_samples(samples, path, self.modes, self.grid_cols)
    plotting.save_curves(self.log.records, os.path.join(self.workdir, "curves.png"))
    if samples.ndim == 4:
      grid = plotting.image_grid(samples, self.grid_cols)
      self.writer.write_image(step, "samples", grid)

  def evaluate(self, step: int, state: TrainState) -> dict | None:
    """gan_jax.evaluate's metrics of the current G, as a metrics.jsonl record of their own;
    returns them (None on the processes that do not write)."""
    self.flush()
    n = self.config.eval_samples or evaluation.default_num_samples(self.config)
    labels = self.exp.labels(n)
    samples = self.exp.sample(state, self.exp.noise(self.keys["eval"], n), labels)
    if not self.is_chief:
      return None
    result = evaluation.sample_metrics(
      samples, self.config, self.config.eval_classifier, labels=labels
    )
    return self.write_evaluation(step, result)

  def write_evaluation(self, step: int, result: dict) -> dict:
    scalars = {f"eval/{k}": float(v) for k, v in result.items() if evaluation.is_scalar(v)}
    if self.is_chief:
      shown = ", ".join(f"{k[5:]} {v:.4g}" for k, v in scalars.items())
      print(f"{self.prefix}step {step} | eval: {shown}", flush=True)
      self.log.write({"step": step, **scalars})
      self.writer.write_scalars(step, scalars)
    return {k[5:]: v for k, v in scalars.items()}
