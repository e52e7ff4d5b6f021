"""train_and_evaluate(config, workdir): the training loop around the pure train step."""

import contextlib
import signal
import threading
import types
from collections.abc import Iterator

import jax
import ml_collections

from gan_jax import UserError, data, experiment, parallel, run_dir
from gan_jax import config as config_lib
from gan_jax.train_step import TrainState


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  exp: experiment.Experiment | None = None,
  examples: data.Examples | None = None,
) -> TrainState:
  """Train `config` in `workdir`, resuming from its latest checkpoint; returns the final state.

  A sweep passes the experiment (and the loaded examples) of trials of one program, so that they
  share its compiled step: `exp` must come from a config that differs from `config` only in
  train_step.vector_fields (gan_jax.trials.program_key)."""
  config = config_lib.validated(config)
  dataset = data.create(config, *parallel.host_share(data.samples_per_batch(config)), examples)
  config.data.shape = dataset.shape
  exp = exp or experiment.build(config, parallel.make_mesh(config.parallel.num_devices))
  with run_dir.RunDirectory(exp, config, workdir) as run:
    state = exp.init_state(config)
    state = run.restore(state) or state
    start = int(jax.device_get(state.step))
    if start > config.train.num_steps:
      raise UserError(
        f"the run in {workdir} is at step {start}, past --config.train.num_steps="
        f"{config.train.num_steps}: raise it to train on"
      )
    if start == config.train.num_steps:
      print(f"{workdir} is finished (step {start} of {start}); raise train.num_steps to train on")
    run.open(start)
    batches = map(exp.shard_batch, data.prefetch(dataset, start, config.train.num_steps))
    return loop(config, run, exp.step, state, run.keys["train"], batches, start)


def loop(
  config: ml_collections.ConfigDict,
  run,
  step_fn,
  state,
  key: jax.Array,
  batches: Iterator[jax.Array],
  start: int,
  adapt=None,
):
  """Steps start+1 .. train.num_steps, with their checkpoints, pictures and evaluations written
  by `run` (a run_dir.RunDirectory, or trials.StackedRuns for stacked trials). After each step
  `adapt(step, state) -> state` (population-based training's exploit and explore) may change
  the state before anything saves it.

  SIGINT and SIGTERM (Ctrl-C, a cluster's preemption) stop it after the step in flight, with a
  checkpoint of that step: Stopped is raised, and the same command resumes exactly.
  """
  num_steps = config.train.num_steps
  with _stop_requests() as stop:
    for step in range(start + 1, num_steps + 1):
      state, metrics = step_fn(state, next(batches), key)
      run.record(step, metrics)
      if adapt:
        state = adapt(step, state)
      if stop.signum:
        run.save_checkpoint(step, state)
        raise Stopped(stop.signum, step)
      if step % config.checkpoint_every == 0 or step == num_steps:
        run.save_checkpoint(step, state)
      if step % config.sample_every == 0 or step == num_steps:
        run.save_samples(step, state)
      if config.eval_every and (step % config.eval_every == 0 or step == num_steps):
        run.evaluate(step, state)
  run.flush()
  return state


class Stopped(Exception):
  """Training stopped on a signal, after writing a checkpoint of `step`."""

  def __init__(self, signum: int, step: int):
    super().__init__(
      f"stopped by {signal.Signals(signum).name} at step {step}, checkpoint "
      "written; rerun the same command to resume"
    )
    self.signum, self.step = signum, step


@contextlib.contextmanager
def _stop_requests():
  """While training, SIGINT and SIGTERM ask for a stop (`.signum`) instead of killing the
  process; a second signal kills it as usual."""
  request = types.SimpleNamespace(signum=0)
  # Signal handlers can only be set from the main thread. Processes of a multi-host run would each
  # stop at the step in flight when their signal arrives, and wait on each other's checkpoint and
  # collectives for good: there a signal ends the process as usual, and the run resumes from its
  # last periodic checkpoint.
  if threading.current_thread() is not threading.main_thread() or jax.process_count() > 1:
    yield request
    return

  def handler(signum, frame):
    if request.signum:  # asked twice: stop now
      signal.signal(signum, signal.SIG_DFL)
      signal.raise_signal(signum)
    request.signum = signum

  previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield request
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
