"""train_and_evaluate(config, workdir): the training loop around the pure train step."""

import functools
import json
import math
import os

import jax
import ml_collections
import numpy as np

from gan_jax import UserError, checkpointing, config as config_lib, data, models, parallel
from gan_jax import plotting, reporting
from gan_jax.data import toy
from gan_jax.train_step import DATA_AXIS, TrainState, generate, init_state, make_gan, train_step


def _prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuse a workdir of another experiment; then record the resolved config."""
  try:
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create workdir {workdir!r}: {e.strerror}") from e
  if not os.access(workdir, os.W_OK):
    raise UserError(f"workdir {workdir!r} is not writable")
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      config_lib.check_same_experiment(json.load(f), config)
  if jax.process_index() == 0:
    with open(path, "w") as f:
      json.dump(config.to_dict(), f, indent=2, sort_keys=True)


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh):
  """(gan, init_fn) for a config whose data.shape is known; init_fn(key) -> replicated state."""
  generator, discriminator = models.build(config, tuple(config.data.shape), axis_name=DATA_AXIS)
  gan = make_gan(config, generator, discriminator)
  init = jax.jit(functools.partial(init_state, gan, data_shape=tuple(config.data.shape)),
                 out_shardings=parallel.replicated(mesh))
  return gan, init


def run_keys(seed: int) -> dict[str, jax.Array]:
  """Every random stream of a run, derived from the one seed."""
  init_key, train_key, sample_key = jax.random.split(jax.random.key(seed), 3)
  return dict(init=init_key, train=train_key, samples=sample_key)


def _check_finite(step: int, metrics: dict, mngr) -> None:
  bad = [k for k, v in metrics.items() if not math.isfinite(v)]
  if bad:
    last = mngr.latest_step()
    kept = f"the last good checkpoint is step {last}" if last is not None else "no checkpoint was saved"
    raise UserError(f"non-finite {', '.join(bad)} at step {step}; stopped, {kept}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  config = ml_collections.ConfigDict(config.to_dict())   # resolved below; the caller's stays as is
  config_lib.validate(config)
  mesh = parallel.make_mesh(config.parallel.num_devices)
  parallel.check_batch_divides(config.train.batch_size, mesh)
  dataset = data.create(config, *parallel.host_share(config.train.batch_size))
  config.data.shape = tuple(dataset.shape)
  _prepare_workdir(config, workdir)

  gan, init = setup(config, mesh)
  keys = run_keys(config.seed)
  state = init(keys["init"])
  mngr = checkpointing.manager(workdir, config.keep_checkpoints)
  state = checkpointing.restore(mngr, state) or state
  start = int(jax.device_get(state.step))
  is_chief = jax.process_index() == 0

  step_fn = parallel.data_parallel(functools.partial(train_step, gan), mesh)
  sample_fn = jax.jit(functools.partial(generate, gan))
  fixed_noise = jax.random.normal(keys["samples"], (config.num_samples, config.model.nz))
  log = reporting.MetricsLog(os.path.join(workdir, "metrics.jsonl"), start) if is_chief else None
  writer = reporting.tensorboard_writer(workdir)
  progress = reporting.Progress(start, config.train.num_steps)
  modes = toy.modes(config.data.name)[0] if config.data.source == "toy" else None

  def finish_step(step: int, metrics) -> None:
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    _check_finite(step, metrics, mngr)
    if step % config.log_every == 0 and is_chief:
      log.write({"step": step, **metrics})
      metrics["steps_per_sec"] = progress.report(step, metrics)
      writer.write_scalars(step, metrics)

  def save_samples(step: int) -> None:
    params = state.ema_params if config.ema_decay else state.g_params
    samples = np.asarray(jax.device_get(sample_fn(params, state.g_stats, fixed_noise)))
    plotting.save_samples(samples, os.path.join(workdir, "samples", f"step_{step:07d}.png"), modes)
    plotting.save_curves(log.records, os.path.join(workdir, "curves.png"))
    if samples.ndim == 4:
      writer.write_images(step, {"samples": plotting.image_grid(samples)[None]})

  pending = None   # the previous step's metrics, read after the next step is dispatched
  batches = data.prefetch(dataset, start, config.train.num_steps)
  try:
    for step in range(start + 1, config.train.num_steps + 1):
      state, metrics = step_fn(state, parallel.shard_batch(next(batches), mesh), keys["train"])
      if pending:
        finish_step(*pending)
      pending = (step, metrics)
      last = step == config.train.num_steps
      if step % config.checkpoint_every == 0 or last:
        finish_step(*pending)
        pending = None
        checkpointing.save(mngr, state)
      if (step % config.sample_every == 0 or last) and is_chief:
        save_samples(step)
    if pending:
      finish_step(*pending)
  finally:
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
  return state
