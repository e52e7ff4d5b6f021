"""A run directory: what one run writes as it trains (config.json, metrics.jsonl, TensorBoard,
checkpoints, sample pictures, evaluations), and a finished or interrupted run read back."""

import json
import math
import os

import jax
import ml_collections

from gan_jax import UserError, checkpointing, data, experiment, parallel, plotting, reporting
from gan_jax import config as config_lib
from gan_jax.metrics import evaluation
from gan_jax.train_step import TrainState


def prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuse a workdir of another experiment; then record the resolved config."""
  try:
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create workdir {workdir!r}: {e.strerror}") from e
  if not os.access(workdir, os.W_OK):
    raise UserError(f"workdir {workdir!r} is not writable")
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    config_lib.check_same_experiment(read_config(workdir).to_dict(), config)
  if jax.process_index() == 0:
    with open(path, "w") as f:
      json.dump(config.to_dict(), f, indent=2, sort_keys=True)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory (no config.json)")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore(workdir: str, step: int | None = None) -> tuple[experiment.Experiment, TrainState]:
  """The experiment of a run directory (on one device) and its checkpoint at `step` (default:
  the latest)."""
  exp = experiment.build(read_config(workdir), parallel.make_mesh(1))
  mngr = checkpointing.manager(workdir, exp.config.keep_checkpoints)
  try:
    state = checkpointing.restore(mngr, exp.init_state(), step)
  finally:
    mngr.close()
  if state is None:
    raise UserError(f"no checkpoint in {workdir}/checkpoints")
  return exp, state


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
    self.keys = experiment.run_keys(config.seed)
    self.mngr = checkpointing.manager(workdir, config.keep_checkpoints)
    self.is_chief = jax.process_index() == 0
    self.prefix = f"[{name}] " if name else ""
    self.noise = exp.noise(self.keys["samples"], config.num_samples)
    self.modes = data.toy_modes(config.data)
    self.metrics = reporting.OneStepBehind(self.write_metrics)
    self.log = self.writer = None

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    self.mngr.wait_until_finished()
    self.mngr.close()
    if self.writer:
      self.writer.close()

  def latest_step(self) -> int | None:
    return self.mngr.latest_step()

  def restore(self, like: TrainState, step: int | None = None) -> TrainState | None:
    """The checkpoint at `step` (default: the latest) shaped like `like`; None without one."""
    return checkpointing.restore(self.mngr, like, step)

  def open(self, step: int) -> None:
    """Start writing at `step`: the metrics log keeps what came before it."""
    path = os.path.join(self.workdir, "metrics.jsonl")
    self.log = reporting.MetricsLog(path, step) if self.is_chief else None
    self.writer = reporting.tensorboard_writer(self.workdir)
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
    self.flush()
    checkpointing.save(self.mngr, state)

  def save_samples(self, step: int, state: TrainState) -> None:
    if not self.is_chief:
      return
    samples = self.exp.sample(state, self.noise)
    plotting.save_samples(
      samples, os.path.join(self.workdir, "samples", f"step_{step:07d}.png"), self.modes
    )
    plotting.save_curves(self.log.records, os.path.join(self.workdir, "curves.png"))
    if samples.ndim == 4:
      self.writer.write_images(step, {"samples": plotting.image_grid(samples)[None]})

  def evaluate(self, step: int, state: TrainState) -> None:
    """gan_jax.evaluate's metrics of the current G, as a metrics.jsonl record of their own."""
    if not self.is_chief:
      return
    self.flush()
    n = self.config.eval_samples or evaluation.default_num_samples(self.config)
    samples = self.exp.sample(state, self.exp.noise(self.keys["eval"], n))
    result = evaluation.sample_metrics(samples, self.config, self.config.eval_classifier)
    scalars = {f"eval/{k}": float(v) for k, v in result.items() if k != "how"}
    self.log.write({"step": step, **scalars})
    self.writer.write_scalars(step, scalars)
