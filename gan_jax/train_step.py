"""The train state and the pure update `train_step(state, batch, key) -> (state, metrics)`.

The step is per-device code: it sees its own slice of the batch and averages gradients, metrics and
BatchNorm statistics over the named data axis. `parallel.parallelize` maps it over a device mesh.
"""

import dataclasses
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from gan_jax import losses
from gan_jax.pixels import to_model_range

DATA_AXIS = "data"
# The numbers the step reads from `state.hparams`, and those of each optimiser (config names) that
# optax.inject_hyperparams keeps in its state: configs that differ only in them share one program.
LOSS_HPARAMS = ("clip_value", "gp_weight", "r1_gamma", "ema_decay")
OPTIMIZER_HPARAMS = ("lr", "b1", "b2", "rms_decay")


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g_params: Any
  g_stats: Any  # G's BatchNorm statistics ({} without BatchNorm)
  d_params: Any
  d_stats: Any
  g_opt_state: Any
  d_opt_state: Any
  ema_params: Any  # EMA of g_params (equal to g_params when ema_decay = 0)
  hparams: Any  # LOSS_HPARAMS as arrays, so a sweep can vmap over them


@dataclasses.dataclass(frozen=True)
class GAN:
  """Everything static about a run's update: modules, optimisers, the loss and its code paths.

  The numbers (LOSS_HPARAMS, the optimisers' hyperparameters) live in the state; here only whether
  a term is on chooses the code path.
  """

  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  loss: str
  nz: int
  global_batch: int
  n_critic: int = 1
  clip_weights: bool = False  # WGAN's weight clipping
  gradient_penalty: bool = False  # WGAN-GP
  r1_penalty: bool = False


def _optimizer_hparams(opt: ml_collections.ConfigDict) -> dict:
  """The numbers of an optimiser config, named as the optax constructor names them."""
  if opt.name == "adam":
    return dict(learning_rate=opt.lr, b1=opt.b1, b2=opt.b2)
  return dict(learning_rate=opt.lr, decay=opt.rms_decay)


def _make_optimizer(opt: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam or RMSProp (PyTorch's eps placement) with hyperparameters kept as arrays in the state."""
  if opt.name == "adam":
    return optax.inject_hyperparams(optax.adam)(**_optimizer_hparams(opt))
  return optax.inject_hyperparams(optax.rmsprop)(
    **_optimizer_hparams(opt), eps=1e-8, eps_in_sqrt=False
  )


def vector_fields() -> tuple[str, ...]:
  """The config fields that configs of one program may differ in: the seed and every number the
  step reads from its state."""
  return (
    "seed",
    *LOSS_HPARAMS,
    *(f"optimizer.{net}.{k}" for net in "gd" for k in OPTIMIZER_HPARAMS),
  )


def state_hparams(config: ml_collections.ConfigDict) -> dict:
  """The numbers of `config` that live in the train state, as float32 arrays (gp_weight counts
  for loss=wgan_gp only)."""
  loss = dict(
    clip_value=config.clip_value,
    gp_weight=config.gp_weight if config.loss == "wgan_gp" else 0.0,
    r1_gamma=config.r1_gamma,
    ema_decay=config.ema_decay,
  )
  as_arrays = lambda numbers: {k: jnp.asarray(v, jnp.float32) for k, v in numbers.items()}
  return dict(
    loss=as_arrays(loss),
    g=as_arrays(_optimizer_hparams(config.optimizer.g)),
    d=as_arrays(_optimizer_hparams(config.optimizer.d)),
  )


def make_gan(config: ml_collections.ConfigDict, generator, discriminator) -> GAN:
  return GAN(
    generator=generator,
    discriminator=discriminator,
    g_tx=_make_optimizer(config.optimizer.g),
    d_tx=_make_optimizer(config.optimizer.d),
    loss=config.loss,
    nz=config.model.nz,
    global_batch=config.train.batch_size,
    n_critic=config.n_critic,
    clip_weights=config.clip_value > 0,
    gradient_penalty=config.loss == "wgan_gp",
    r1_penalty=config.r1_gamma > 0,
  )


def init_state(gan: GAN, key: jax.Array, data_shape: tuple[int, ...], hparams: dict) -> TrainState:
  """Fresh parameters and optimiser states, with the numbers `hparams` (from state_hparams).
  Jit this: un-jitted init compiles op by op."""
  g_key, d_key = jax.random.split(key)
  g_vars = gan.generator.init(g_key, jnp.zeros((1, gan.nz)), train=False)
  d_vars = gan.discriminator.init(d_key, jnp.zeros((1, *data_shape)), train=False)
  g_params, g_stats = g_vars["params"], {k: v for k, v in g_vars.items() if k != "params"}
  d_params, d_stats = d_vars["params"], {k: v for k, v in d_vars.items() if k != "params"}
  with_numbers = lambda opt_state, numbers: opt_state._replace(
    hyperparams={**opt_state.hyperparams, **numbers}
  )
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    g_params=g_params,
    g_stats=g_stats,
    d_params=d_params,
    d_stats=d_stats,
    g_opt_state=with_numbers(gan.g_tx.init(g_params), hparams["g"]),
    d_opt_state=with_numbers(gan.d_tx.init(d_params), hparams["d"]),
    ema_params=g_params,
    hparams=hparams["loss"],
  )


def _local_slice(x, axis):
  """This device's share of an array drawn for the whole global batch (along `axis`)."""
  size = x.shape[axis] // lax.axis_size(DATA_AXIS)
  return lax.dynamic_slice_in_dim(x, lax.axis_index(DATA_AXIS) * size, size, axis=axis)


def _apply(module, params, stats, x):
  """Train-mode forward; returns (outputs, updated statistics)."""
  if not stats:
    return module.apply({"params": params}, x, train=True), {}
  out, new_stats = module.apply({"params": params, **stats}, x, train=True, mutable=list(stats))
  return out, dict(new_stats)


def _critic_update(gan: GAN, state: TrainState, real, fake, gp_eps):
  """One D update on a real and a (fixed) generated batch."""

  def loss_fn(d_params):
    real_out, stats = _apply(gan.discriminator, d_params, state.d_stats, real)
    fake_out, stats = _apply(gan.discriminator, d_params, stats, fake)
    d_loss = losses.discriminator_loss(gan.loss, real_out, fake_out)
    d_of = lambda x: _apply(gan.discriminator, d_params, state.d_stats, x)[0]
    terms = {}
    if gan.gradient_penalty:
      terms["gp"] = losses.gradient_penalty(d_of, real, fake, gp_eps)
      d_loss += state.hparams["gp_weight"] * terms["gp"]
    if gan.r1_penalty:
      terms["r1"] = losses.r1_penalty(d_of, real)
      d_loss += 0.5 * state.hparams["r1_gamma"] * terms["r1"]
    if losses.is_probabilistic(gan.loss):
      real_out, fake_out = jax.nn.sigmoid(real_out), jax.nn.sigmoid(fake_out)
    metrics = dict(d_loss=d_loss, d_real=jnp.mean(real_out), d_fake=jnp.mean(fake_out), **terms)
    return d_loss, (stats, metrics)

  grads, (d_stats, metrics) = jax.grad(loss_fn, has_aux=True)(state.d_params)
  grads = lax.pmean(grads, DATA_AXIS)
  updates, d_opt_state = gan.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  if gan.clip_weights:
    c = state.hparams["clip_value"]
    d_params = jax.tree.map(lambda p: jnp.clip(p, -c, c), d_params)
  metrics["d_grad_norm"] = optax.global_norm(grads)
  state = state.replace(d_params=d_params, d_stats=d_stats, d_opt_state=d_opt_state)
  return state, metrics


def _generator_update(gan: GAN, state: TrainState, fake, g_vjp):
  """One G update through D (already updated), backpropagated into G by `g_vjp` of `fake`."""

  def loss_of_fake(fake):
    fake_out, _ = _apply(gan.discriminator, state.d_params, state.d_stats, fake)
    return losses.generator_loss(gan.loss, fake_out)

  g_loss, loss_grad_fake = jax.value_and_grad(loss_of_fake)(fake)
  (grads,) = g_vjp(loss_grad_fake)
  grads = lax.pmean(grads, DATA_AXIS)
  updates, g_opt_state = gan.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  decay = state.hparams["ema_decay"]
  ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, g_params)
  state = state.replace(g_params=g_params, g_opt_state=g_opt_state, ema_params=ema_params)
  return state, dict(g_loss=g_loss, g_grad_norm=optax.global_norm(grads))


def train_step(gan: GAN, state: TrainState, batch, key):
  """n_critic D updates, then one G update.

  batch: this device's (n_critic, batch / devices, ...) slice of the global batch.
  key: the run's root key; the step's randomness is fold_in(key, step). Noise is drawn for the
  whole global batch and sliced per device, so 1 device and N devices see the same numbers.
  """
  noise_key, eps_key = jax.random.split(jax.random.fold_in(key, state.step))
  z = _local_slice(jax.random.normal(noise_key, (gan.n_critic, gan.global_batch, gan.nz)), 1)
  gp_eps = _local_slice(jax.random.uniform(eps_key, (gan.n_critic, gan.global_batch)), 1)
  real = to_model_range(batch)

  if gan.n_critic == 1:
    # The D and the G update share one generated batch, as pytorch/examples dcgan.
    fake, g_vjp, g_stats = jax.vjp(
      lambda p: _apply(gan.generator, p, state.g_stats, z[0]), state.g_params, has_aux=True
    )
    state, d_metrics = _critic_update(
      gan, state.replace(g_stats=g_stats), real[0], lax.stop_gradient(fake), gp_eps[0]
    )
  else:
    # A scan compiles one critic update, not n_critic copies. G's update then draws noise of its
    # own, as WGAN's and WGAN-GP's Algorithm 1 do.
    def critic_update(state, inputs):
      z_i, real_i, eps_i = inputs
      fake, g_stats = _apply(gan.generator, state.g_params, state.g_stats, z_i)
      return _critic_update(gan, state.replace(g_stats=g_stats), real_i, fake, eps_i)

    state, d_metrics = lax.scan(critic_update, state, (z, real, gp_eps))
    d_metrics = jax.tree.map(lambda m: m[-1], d_metrics)
    g_noise = jax.random.normal(jax.random.fold_in(noise_key, 1), (gan.global_batch, gan.nz))
    fake, g_vjp = jax.vjp(
      lambda p: _apply(gan.generator, p, state.g_stats, _local_slice(g_noise, 0))[0],
      state.g_params,
    )
  state, g_metrics = _generator_update(gan, state, fake, g_vjp)
  metrics = lax.pmean({**d_metrics, **g_metrics}, DATA_AXIS)
  return state.replace(step=state.step + 1), metrics


def generate(gan: GAN, params, g_stats, z):
  """Samples from G in eval mode (BatchNorm uses its running statistics)."""
  return gan.generator.apply({"params": params, **g_stats}, z, train=False)
