"""train_and_evaluate(config, workdir): the training loop around the pure train step.

`train_trials` runs several configs that differ only in numbers (learning rates, betas, loss weights,
seeds) as one program: their states stacked on a leading trial axis and the step vmapped over it.
Each trial still writes its own run directory, exactly as a run of its own would.
"""

import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import UserError, checkpointing, config as config_lib, data, models, parallel
from gan_jax import plotting, reporting
from gan_jax.data import toy
from gan_jax.train_step import DATA_AXIS, TrainState, generate, init_state, make_gan, train_step
from gan_jax.train_step import with_hparams


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


def setup(config: ml_collections.ConfigDict, sharding: jax.sharding.Sharding):
  """(gan, init_fn) for a config whose data.shape is known; init_fn(key) -> state on `sharding`."""
  generator, discriminator = models.build(config, tuple(config.data.shape), axis_name=DATA_AXIS)
  gan = make_gan(config, generator, discriminator)
  init = jax.jit(functools.partial(init_state, gan, data_shape=tuple(config.data.shape)),
                 out_shardings=sharding)
  return gan, init


def run_keys(seed: int) -> dict[str, jax.Array]:
  """Every random stream of a run, derived from the one seed."""
  init_key, train_key, sample_key = jax.random.split(jax.random.key(seed), 3)
  return dict(init=init_key, train=train_key, samples=sample_key,
              eval=jax.random.fold_in(sample_key, 1))


def sampling_params(config: ml_collections.ConfigDict, state: TrainState):
  """G's weights for pictures and metrics: the EMA when it is on."""
  return state.ema_params if config.ema_decay else state.g_params


class _Run:
  """One run directory: its metrics log, TensorBoard, checkpoints and sample pictures."""

  def __init__(self, config, workdir, sample_fn, name=""):
    self.config, self.workdir, self.sample_fn = config, workdir, sample_fn
    self.keys = run_keys(config.seed)
    self.mngr = checkpointing.manager(workdir, config.keep_checkpoints)
    self.is_chief = jax.process_index() == 0
    self.prefix = f"[{name}] " if name else ""
    self.noise = jax.random.normal(self.keys["samples"], (config.num_samples, config.model.nz))
    self.modes = toy.modes(config.data.name)[0] if config.data.source == "toy" else None

  def start(self, step: int) -> None:
    path = os.path.join(self.workdir, "metrics.jsonl")
    self.log = reporting.MetricsLog(path, step) if self.is_chief else None
    self.writer = reporting.tensorboard_writer(self.workdir)
    self.progress = reporting.Progress(step, self.config.train.num_steps, self.prefix)

  def finish_step(self, step: int, metrics: dict) -> None:
    metrics = {k: float(v) for k, v in metrics.items()}
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
      last = self.mngr.latest_step()
      kept = f"the last good checkpoint is step {last}" if last is not None else "no checkpoint was saved"
      raise UserError(f"{self.prefix}non-finite {', '.join(bad)} at step {step}; stopped, {kept}")
    if step % self.config.log_every == 0 and self.is_chief:
      self.log.write({"step": step, **metrics})
      metrics["steps_per_sec"] = self.progress.report(step, metrics)
      self.writer.write_scalars(step, metrics)

  def save_samples(self, step: int, state: TrainState) -> None:
    params = sampling_params(self.config, state)
    samples = np.asarray(jax.device_get(self.sample_fn(params, state.g_stats, self.noise)))
    path = os.path.join(self.workdir, "samples", f"step_{step:07d}.png")
    plotting.save_samples(samples, path, self.modes)
    plotting.save_curves(self.log.records, os.path.join(self.workdir, "curves.png"))
    if samples.ndim == 4:
      self.writer.write_images(step, {"samples": plotting.image_grid(samples)[None]})

  def evaluate(self, step: int, state: TrainState) -> None:
    """gan_jax.evaluate's metrics of the current G, as a metrics.jsonl record of their own."""
    from gan_jax import evaluate
    params = sampling_params(self.config, state)
    n = self.config.eval_samples or evaluate.default_num_samples(self.config)
    z = jax.random.normal(self.keys["eval"], (n, self.config.model.nz))
    samples = np.concatenate([np.asarray(self.sample_fn(params, state.g_stats, z[i:i + 1000]))
                              for i in range(0, n, 1000)])
    result = evaluate.sample_metrics(samples, self.config, self.config.eval_classifier)
    scalars = {f"eval/{k}": float(v) for k, v in result.items() if k != "how"}
    self.log.write({"step": step, **scalars})
    self.writer.write_scalars(step, scalars)

  def close(self) -> None:
    self.mngr.wait_until_finished()
    self.mngr.close()
    if hasattr(self, "writer"):
      self.writer.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  return train_trials([config], [workdir])


def _trial(tree, k):
  return jax.tree.map(lambda x: x[k], tree)


def train_trials(configs, workdirs, names=None) -> TrainState:
  """Train configs that share one program; more than one runs vmapped (states stacked on axis 0).

  Returns the final state (stacked when there are several trials).
  """
  configs = [ml_collections.ConfigDict(c.to_dict()) for c in configs]   # resolved below
  for c in configs:
    config_lib.validate(c)
  first, stacked = configs[0], len(configs) > 1
  if stacked:
    mesh = parallel.make_trial_mesh(len(configs), first.parallel.num_devices)
  else:
    mesh = parallel.make_mesh(first.parallel.num_devices)
  parallel.check_batch_divides(first.train.batch_size, mesh)
  parallel.reuse_freed_host_memory(mesh)
  host_share = parallel.host_share(first.train.batch_size)
  examples = None if first.data.source == "toy" else data.load_images(first.data)
  datasets = [data.create(c, *host_share, examples) for c in configs]
  for c, workdir in zip(configs, workdirs):
    c.data.shape = tuple(datasets[0].shape)
    _prepare_workdir(c, workdir)

  state_sharding = parallel.trial_sharding(mesh) if stacked else parallel.replicated(mesh)
  gan, init = setup(first, parallel.replicated(mesh))
  sample_fn = jax.jit(functools.partial(generate, gan))
  runs = [_Run(c, w, sample_fn, n) for c, w, n in zip(configs, workdirs, names or [""] * len(configs))]
  try:
    states = [with_hparams(init(r.keys["init"]), r.config) for r in runs]
    restored = [checkpointing.restore(r.mngr, s, step=_common_step(runs)) for r, s in zip(runs, states)]
    if all(s is not None for s in restored):
      states = restored
    if stacked:
      state = jax.device_put(jax.tree.map(lambda *xs: jnp.stack(xs), *states), state_sharding)
      keys = jax.device_put(jnp.stack([r.keys["train"] for r in runs]), state_sharding)
      step_fn = parallel.trials_parallel(functools.partial(train_step, gan), mesh)
    else:
      state, keys = jax.device_put(states[0], state_sharding), runs[0].keys["train"]
      step_fn = parallel.data_parallel(functools.partial(train_step, gan), mesh)
    start = int(jax.device_get(states[0].step))
    del states, restored
    for r in runs:
      r.start(start)
    state = _loop(first, runs, datasets, state, keys, step_fn, mesh, start, stacked)
  finally:
    for r in runs:
      r.close()
  return state


def _common_step(runs) -> int | None:
  """The latest checkpoint step every run has (None: start afresh)."""
  steps = [r.mngr.latest_step() for r in runs]
  return None if None in steps else min(steps)


def _loop(config, runs, datasets, state, keys, step_fn, mesh, start, stacked):
  view = _trial if stacked else (lambda tree, k: tree)
  batch_spec = parallel.TRIAL_BATCH_SPEC if stacked else parallel.BATCH_SPEC
  num_steps = config.train.num_steps

  def finish_step(step, metrics):
    metrics = jax.device_get(metrics)
    for k, run in enumerate(runs):
      run.finish_step(step, view(metrics, k))

  pending = None   # the previous step's metrics, read after the next step is dispatched
  streams = [data.prefetch(d, start, num_steps) for d in datasets]
  for step in range(start + 1, num_steps + 1):
    host_batch = np.stack([next(s) for s in streams]) if stacked else next(streams[0])
    state, metrics = step_fn(state, parallel.shard_batch(host_batch, mesh, batch_spec), keys)
    if pending:
      finish_step(*pending)
    pending = (step, metrics)
    last = step == num_steps
    if step % config.checkpoint_every == 0 or last:
      finish_step(*pending)   # a checkpoint is written only after its step's losses were checked
      pending = None
      for k, run in enumerate(runs):
        checkpointing.save(run.mngr, view(state, k))
    for k, run in enumerate(runs):
      if run.is_chief and (step % config.sample_every == 0 or last):
        run.save_samples(step, view(state, k))
      if run.is_chief and config.eval_every and step % config.eval_every == 0:
        if pending:
          finish_step(*pending)   # keep metrics.jsonl in step order
          pending = None
        run.evaluate(step, view(state, k))
  if pending:
    finish_step(*pending)
  return state
