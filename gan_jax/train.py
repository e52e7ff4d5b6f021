"""train_and_evaluate(config, workdir): the training loop around the pure train step."""

from collections.abc import Iterator

import jax
import ml_collections

from gan_jax import config as config_lib
from gan_jax import data, experiment, parallel, run_dir
from gan_jax.train_step import TrainState


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Train `config` in `workdir`, resuming from its latest checkpoint; returns the final state."""
  config = config_lib.validated(config)
  dataset = data.create(config, *parallel.host_share(config.train.batch_size))
  config.data.shape = dataset.shape
  run_dir.prepare(config, workdir)
  exp = experiment.build(config, parallel.make_mesh(config.parallel.num_devices))
  with run_dir.RunDirectory(exp, config, workdir) as run:
    state = exp.init_state()
    state = run.restore(state) or state
    start = int(jax.device_get(state.step))
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
):
  """Steps start+1 .. train.num_steps, with their checkpoints, pictures and evaluations written
  by `run` (a run_dir.RunDirectory, or trials.StackedRuns for stacked trials)."""
  num_steps = config.train.num_steps
  for step in range(start + 1, num_steps + 1):
    state, metrics = step_fn(state, next(batches), key)
    run.record(step, metrics)
    if step % config.checkpoint_every == 0 or step == num_steps:
      run.save_checkpoint(step, state)
    if step % config.sample_every == 0 or step == num_steps:
      run.save_samples(step, state)
    if config.eval_every and step % config.eval_every == 0:
      run.evaluate(step, state)
  run.flush()
  return state
