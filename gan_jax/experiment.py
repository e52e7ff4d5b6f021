"""The one builder of a run's program: a config and a mesh -> the GAN, its initial state, the
compiled train step and G's sampler.

Training, the sweeps, `sample`, `evaluate`, the benchmarks and the tests all build through `build`,
so they all run the same wiring. On a (trial, data) mesh the same builder makes the vmapped step of
stacked trials (see gan_jax.trials).
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import cpu, models, parallel
from gan_jax.models import layers
from gan_jax.train_step import (
  DATA_AXIS,
  GAN,
  TrainState,
  generate,
  init_state,
  make_gan,
  noise,
  state_hparams,
  train_step,
)


def run_keys(seed: int) -> dict[str, jax.Array]:
  """Every random stream of a run, derived from the one seed."""
  init_key, train_key, sample_key = jax.random.split(jax.random.key(seed), 3)
  return dict(
    init=init_key, train=train_key, samples=sample_key, eval=jax.random.fold_in(sample_key, 1)
  )


@dataclasses.dataclass(frozen=True)
class Experiment:
  config: ml_collections.ConfigDict  # validated, data.shape known
  mesh: jax.sharding.Mesh
  gan: GAN
  step: Callable  # (state, batch, key) -> (state, metrics): the train step on `mesh`
  _init: Callable
  _generate: Callable
  _standing_stats: Callable
  _sample_trials: Callable

  def init_state(self, config: ml_collections.ConfigDict | None = None) -> TrainState:
    """A fresh state from the seed and numbers of `config`: the experiment's own by default, or
    a trial's (a config of the same program, as trials.group_trials forms them)."""
    config = self.config if config is None else config
    return self._init(run_keys(config.seed)["init"], hparams=state_hparams(config))

  def shard_batch(self, host_batch: np.ndarray) -> jax.Array:
    """This host's part of a step's batch as the step's global input."""
    return parallel.shard_batch(host_batch, self.mesh)

  def noise(self, key: jax.Array, n: int) -> np.ndarray:
    """Noise for `sample`, the same on every host (a host-side array, as multi-host jit wants)."""
    return np.asarray(noise(self.config.model.noise, key, (n, self.config.model.nz)))

  def labels(self, n: int, label: int | None = None) -> np.ndarray | None:
    """The classes to ask G for n samples: None when unconditional; all `label`, or else each
    class in turn (0, 1, ..., C-1, 0, ...)."""
    num_classes = self.config.model.num_classes
    if not num_classes:
      return None
    return np.full(n, label, np.int32) if label is not None else np.arange(n) % num_classes

  def sample(
    self, state: TrainState, z: np.ndarray, labels: np.ndarray | None = None
  ) -> np.ndarray:
    """G's float32 outputs for noise `z` (of classes `labels`, by default self.labels) in eval
    mode, with the EMA weights (G's own when ema_decay is 0). BatchNorm's running statistics
    belong to G's own weights, so the EMA weights get standing statistics of their own.

    Images are made 1,000 at a time, to bound G's activations; 2-D points in one call (a toy
    trial's 2,500 in 28 ms instead of 52 ms, with one program to compile instead of two)."""
    chunk = 1000 if len(self.config.data.shape) > 1 else max(1, len(z))
    stats = state.g_stats
    if stats.get("batch_stats") and float(state.hparams["ema_decay"]) > 0:
      stats = {**stats, "batch_stats": self._standing_stats(state.ema_params, stats)}
    labels = self.labels(len(z)) if labels is None else labels
    chunks = range(0, len(z), chunk)
    of = lambda i: None if labels is None else labels[i : i + chunk]
    return np.concatenate(
      [np.asarray(self._generate(state.ema_params, stats, z[i : i + chunk], of(i))) for i in chunks]
    )

  def sample_trials(self, state: TrainState, z: jax.Array) -> jax.Array:
    """`sample` of every trial of a stacked state at once, trial k on noise z[k], as device
    arrays (unconditional G only)."""
    return self._sample_trials(state.ema_params, state.g_stats, state.hparams["ema_decay"], z)


def build(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> Experiment:
  """The experiment of a validated `config` whose data.shape is set, on `mesh`."""
  shape = tuple(config.data.shape)
  parallel.check_batch_divides(config.train.batch_size, mesh)
  cpu.reuse_freed_memory(mesh)
  gan = make_gan(config, *models.build(config, shape, axis_name=DATA_AXIS))
  init = jax.jit(
    functools.partial(init_state, gan, data_shape=shape), out_shardings=NamedSharding(mesh, P())
  )
  jax.eval_shape(init, jax.random.key(0), hparams=state_hparams(config))  # model errors, now
  step = parallel.parallelize(functools.partial(train_step, gan), mesh)
  # standing statistics are G's own batch statistics, not averaged over the data axis
  alone = gan.generator.clone(axis_name=None)
  standing_stats = jax.jit(
    functools.partial(_standing_stats, alone, gan.noise, gan.nz, gan.num_classes)
  )
  sample_trials = jax.jit(jax.vmap(functools.partial(_eval_samples, gan, standing_stats)))
  return Experiment(
    config,
    mesh,
    gan,
    step,
    init,
    jax.jit(functools.partial(generate, gan)),
    standing_stats,
    sample_trials,
  )


def _eval_samples(gan: GAN, standing_stats, ema_params, g_stats, ema_decay, z):
  """Experiment.sample's samples of one trial, traced: G with the EMA weights and, when the
  trial averages them, their standing statistics."""
  if g_stats.get("batch_stats"):
    standing = standing_stats(ema_params, g_stats)
    chosen = lambda s, own: jnp.where(ema_decay > 0, s, own)
    g_stats = {**g_stats, "batch_stats": jax.tree.map(chosen, standing, g_stats["batch_stats"])}
  return generate(gan, ema_params, g_stats, z)


def _standing_stats(
  generator,
  noise_kind: str,
  nz: int,
  num_classes: int,
  params,
  stats,
  batches: int = 4,
  batch_size: int = 256,
):
  """BatchNorm statistics of G with `params` itself, as BigGAN's standing statistics: each
  layer's train-mode batch statistics averaged over a few batches of fixed noise (and classes in
  turn). `stats` holds G's collections; the new "batch_stats" are returned."""
  zeros = jax.tree.map(jnp.zeros_like, stats["batch_stats"])
  labels = jnp.arange(batch_size) % num_classes if num_classes else None

  def of_batch(key):
    z = noise(noise_kind, key, (batch_size, nz))
    variables = {**stats, "params": params, "batch_stats": zeros}
    _, updated = generator.apply(variables, z, train=True, labels=labels, mutable=list(stats))
    # from zero, a BatchNorm update keeps (1 - momentum) of the batch's statistics
    return jax.tree.map(lambda s: s / (1.0 - layers.BN_MOMENTUM), updated["batch_stats"])

  per_batch = jax.lax.map(of_batch, jax.random.split(jax.random.key(0), batches))
  return jax.tree.map(lambda s: s.mean(0), per_batch)
