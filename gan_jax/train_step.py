"""The train state and the pure update `train_step(state, batch, key) -> (state, metrics)`.

The step is per-device code: it sees its own slice of the batch and averages gradients, metrics and
BatchNorm statistics over the named data axis. `parallel.parallelize` maps it over a device mesh.
A batch is an array of examples, or for a class-conditional GAN the pair (examples, labels).
"""

import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from gan_jax import augment, losses
from gan_jax import config as config_lib
from gan_jax.pixels import to_model_range

DATA_AXIS = "data"
# The numbers the step reads from `state.hparams`, and those of each optimiser (config names) that
# optax.inject_hyperparams keeps in its state: configs that differ only in them share one program.
LOSS_HPARAMS = ("clip_value", "gp_weight", "r1_gamma", "ema_decay", "acgan_weight")
OPTIMIZER_HPARAMS = ("lr", "b1", "b2", "rms_decay")


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g_params: Any
  g_stats: Any  # G's BatchNorm statistics and spectral-norm vectors ({} without either)
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
  num_classes: int = 0  # > 0: class-conditional, batches are (examples, labels)
  acgan: bool = False  # D has an auxiliary classifier whose cross-entropy both losses add
  augment: tuple[str, ...] = ()  # DiffAugment ops on everything D sees
  pac: int = 1  # PacGAN: D judges packs of this many samples; global_batch counts packs
  pac_member_batches: bool = False  # G normalises each pack member's samples as one batch
  simultaneous_updates: bool = False  # G's updates see D as it was before the step's D updates
  g_steps: int = 1  # G updates per step, on the same noise
  noise: str = "normal"  # G's noise distribution (see `noise`)
  unroll_steps: int = 0  # Unrolled GAN: G's loss through this many differentiable D updates


def _optimizer_hparams(opt: ml_collections.ConfigDict) -> dict:
  """The numbers of an optimiser config, named as the optax constructor names them."""
  if opt.name == "adam":
    return dict(learning_rate=opt.lr, b1=opt.b1, b2=opt.b2)
  return dict(learning_rate=opt.lr, decay=opt.rms_decay)


def _make_optimizer(
  opt: ml_collections.ConfigDict, updates: int, differentiable: bool = False
) -> optax.GradientTransformation:
  """Adam or RMSProp (PyTorch's eps placement) with hyperparameters kept as arrays in the state,
  and the learning rate scaled by `opt.schedule` over `updates` updates: "linear" decays it to 0
  (as mimicry's SNGAN). The schedule multiplies the state's rate, so a sweep over lr still shares
  one program. A `differentiable` Adam (differentiated through, by Unrolled GAN) keeps a tiny
  eps_root under its square root: sqrt's derivative at a parameter's zero second moment is inf."""
  if opt.name == "adam":
    safe_root = dict(eps_root=1e-16) if differentiable else {}  # else the state of older runs
    tx = optax.inject_hyperparams(optax.adam)(**_optimizer_hparams(opt), **safe_root)
  else:
    tx = optax.inject_hyperparams(optax.rmsprop)(
      **_optimizer_hparams(opt), eps=1e-8, eps_in_sqrt=False
    )
  if opt.schedule == "linear":
    return optax.chain(tx, optax.scale_by_schedule(optax.linear_schedule(1.0, 0.0, updates)))
  return tx


def _with_numbers(opt_state, numbers: dict):
  """`opt_state` (of _make_optimizer) holding the hyperparameters `numbers`."""
  if isinstance(opt_state, tuple) and not hasattr(opt_state, "hyperparams"):  # a chain
    return (_with_numbers(opt_state[0], numbers), *opt_state[1:])
  return opt_state._replace(hyperparams={**opt_state.hyperparams, **numbers})


def vector_fields() -> tuple[str, ...]:
  """The config fields that configs of one program may differ in: the seed and every number the
  step reads from its state."""
  return (
    "seed",
    *LOSS_HPARAMS,
    *(f"optimizer.{net}.{k}" for net in "gd" for k in OPTIMIZER_HPARAMS),
  )


_OPTAX_NAMES = {"lr": "learning_rate", "b1": "b1", "b2": "b2", "rms_decay": "decay"}


def _injected(opt_state):
  """The inject_hyperparams state of an optimiser of _make_optimizer (first of a chain)."""
  return opt_state if hasattr(opt_state, "hyperparams") else opt_state[0]


def read_number(state: TrainState, field: str):
  """The value in `state` of a vector_fields() number other than the seed (a config name, e.g.
  "optimizer.d.lr"); None where the state has none (b1 of RMSProp)."""
  if field in LOSS_HPARAMS:
    return state.hparams[field]
  _, net, name = field.split(".")
  opt_state = state.g_opt_state if net == "g" else state.d_opt_state
  return _injected(opt_state).hyperparams.get(_OPTAX_NAMES[name])


def with_number(state: TrainState, field: str, value) -> TrainState:
  """`state` whose number `field` (as read_number names it) is `value`."""
  if field in LOSS_HPARAMS:
    return state.replace(hparams={**state.hparams, field: value})
  _, net, name = field.split(".")
  attribute = f"{net}_opt_state"
  numbers = {_OPTAX_NAMES[name]: value}
  return state.replace(**{attribute: _with_numbers(getattr(state, attribute), numbers)})


def state_hparams(config: ml_collections.ConfigDict) -> dict:
  """The numbers of `config` that live in the train state, as float32 arrays (gp_weight counts
  for loss=wgan_gp only)."""
  loss = dict(
    clip_value=config.clip_value,
    gp_weight=config.gp_weight if config.loss == "wgan_gp" else 0.0,
    r1_gamma=config.r1_gamma,
    ema_decay=config.ema_decay,
    acgan_weight=config.acgan_weight if config.model.conditioning == "acgan" else 0.0,
  )
  as_arrays = lambda numbers: {k: jnp.asarray(v, jnp.float32) for k, v in numbers.items()}
  return dict(
    loss=as_arrays(loss),
    g=as_arrays(_optimizer_hparams(config.optimizer.g)),
    d=as_arrays(_optimizer_hparams(config.optimizer.d)),
  )


def make_gan(config: ml_collections.ConfigDict, generator, discriminator) -> GAN:
  decay_steps = config.train.decay_steps or config.train.num_steps
  return GAN(
    generator=generator,
    discriminator=discriminator,
    g_tx=_make_optimizer(config.optimizer.g, decay_steps),
    d_tx=_make_optimizer(
      config.optimizer.d, decay_steps * config.n_critic, differentiable=config.unroll_steps > 0
    ),
    loss=config.loss,
    nz=config.model.nz,
    global_batch=config.train.batch_size,
    n_critic=config.n_critic,
    clip_weights=config.clip_value > 0,
    gradient_penalty=config.loss == "wgan_gp",
    r1_penalty=config.r1_gamma > 0,
    num_classes=config.model.num_classes,
    acgan=config.model.num_classes > 0 and config.model.conditioning == "acgan",
    augment=config_lib.augment_ops(config.augment.policy),
    pac=config.pac,
    pac_member_batches=config.pac_member_batches,
    simultaneous_updates=config.simultaneous_updates,
    unroll_steps=config.unroll_steps,
    g_steps=config.g_steps,
    noise=config.model.noise,
  )


def init_state(gan: GAN, key: jax.Array, data_shape: tuple[int, ...], hparams: dict) -> TrainState:
  """Fresh parameters and optimiser states, with the numbers `hparams` (from state_hparams).
  Jit this: un-jitted init compiles op by op."""
  g_key, d_key = jax.random.split(key)
  labels = jnp.zeros((1,), jnp.int32) if gan.num_classes else None
  g_vars = gan.generator.init(g_key, jnp.zeros((1, gan.nz)), train=False, labels=labels)
  one_pack = pack(jnp.zeros((gan.pac, *data_shape)), gan.pac)
  d_vars = gan.discriminator.init(d_key, one_pack, train=False, labels=labels)
  g_params, g_stats = g_vars["params"], {k: v for k, v in g_vars.items() if k != "params"}
  d_params, d_stats = d_vars["params"], {k: v for k, v in d_vars.items() if k != "params"}
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    g_params=g_params,
    g_stats=g_stats,
    d_params=d_params,
    d_stats=d_stats,
    g_opt_state=_with_numbers(gan.g_tx.init(g_params), hparams["g"]),
    d_opt_state=_with_numbers(gan.d_tx.init(d_params), hparams["d"]),
    ema_params=g_params,
    hparams=hparams["loss"],
  )


def _local_slice(x, axis):
  """This device's share of an array drawn for the whole global batch (along `axis`)."""
  size = x.shape[axis] // lax.axis_size(DATA_AXIS)
  return lax.dynamic_slice_in_dim(x, lax.axis_index(DATA_AXIS) * size, size, axis=axis)


def noise(kind: str, key, shape):
  """G's input: N(0, 1), or for "uniform" U(-1, 1) (carpedm20's DCGAN, which PacGAN's code uses)."""
  if kind == "uniform":
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  return jax.random.normal(key, shape)


def _draw(gan: GAN, key, batch: tuple[int, ...], image_size) -> dict:
  """G's noise "z", the labels it is asked for and DiffAugment's numbers for the real and the
  generated batch, drawn for global batches of shape `batch` and sliced to this device's share."""
  draws = dict(z=noise(gan.noise, key, (*batch, gan.nz)))
  if gan.num_classes:
    draws["labels"] = jax.random.randint(jax.random.fold_in(key, 2), batch, 0, gan.num_classes)
  if gan.augment:
    real_key, fake_key = jax.random.split(jax.random.fold_in(key, 3))
    draws["aug_real"] = augment.draw(gan.augment, real_key, batch, image_size)
    draws["aug_fake"] = augment.draw(gan.augment, fake_key, batch, image_size)
  return jax.tree.map(lambda x: _local_slice(x, len(batch) - 1), draws)


def _apply(module, params, stats, x, labels=None):
  """Train-mode forward; returns (outputs, updated statistics)."""
  if not stats:
    return module.apply({"params": params}, x, train=True, labels=labels), {}
  out, new_stats = module.apply(
    {"params": params, **stats}, x, train=True, labels=labels, mutable=list(stats)
  )
  return out, dict(new_stats)


def pack(x, pac: int):
  """PacGAN's D input: each run of `pac` consecutive samples concatenated along the last axis
  (the features of vectors, the channels of images), as the authors' code concatenates them."""
  if pac == 1:
    return x
  packs = x.reshape(x.shape[0] // pac, pac, *x.shape[1:])
  return jnp.moveaxis(packs, 1, -2).reshape(*packs.shape[:1], *x.shape[1:-1], -1)


def _d_input(gan: GAN, x, numbers):
  """What D sees of samples `x`: augmented by DiffAugment's `numbers`, then packed."""
  return pack(augment.apply(gan.augment, x, numbers) if gan.augment else x, gan.pac)


def _class_loss(class_logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(class_logits, labels).mean()


def _critic_update(gan: GAN, state: TrainState, real, real_labels, fake, draws, gp_eps):
  """One D update on a real and a (fixed) generated batch."""

  def loss_fn(d_params):
    real_x = _d_input(gan, real, draws.get("aug_real"))
    fake_x = _d_input(gan, fake, draws.get("aug_fake"))
    real_out, stats = _apply(gan.discriminator, d_params, state.d_stats, real_x, real_labels)
    fake_out, stats = _apply(gan.discriminator, d_params, stats, fake_x, draws.get("labels"))
    terms = {}
    if gan.acgan:
      (real_out, real_classes), (fake_out, fake_classes) = real_out, fake_out
      terms["d_class"] = _class_loss(real_classes, real_labels)
      terms["d_class"] += _class_loss(fake_classes, draws["labels"])
    d_loss = losses.discriminator_loss(gan.loss, real_out, fake_out)
    if gan.acgan:
      d_loss += state.hparams["acgan_weight"] * terms["d_class"]

    def d_of(x):  # the penalties' D: on the real labels, statistics unchanged
      out = _apply(gan.discriminator, d_params, state.d_stats, x, real_labels)[0]
      return out[0] if gan.acgan else out

    if gan.gradient_penalty:
      terms["gp"] = losses.gradient_penalty(d_of, real_x, fake_x, gp_eps)
      d_loss += state.hparams["gp_weight"] * terms["gp"]
    if gan.r1_penalty:
      terms["r1"] = losses.r1_penalty(d_of, real_x)
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


def generator_loss(gan: GAN, state: TrainState, fake, draws, critic_inputs):
  """G's loss on its samples `fake` (and the ACGAN terms). With gan.unroll_steps = k > 0 (Metz et
  al. 2017), D is first taken k updates further on `critic_inputs` = (real, real labels, gp_eps)
  and `fake`, its optimiser's rule included; the loss, through that D, reaches G also through
  those updates."""
  for _ in range(gan.unroll_steps):
    state, _ = _critic_update(gan, state, *critic_inputs[:2], fake, draws, critic_inputs[2])
  x = _d_input(gan, fake, draws.get("aug_fake"))
  fake_out, _ = _apply(gan.discriminator, state.d_params, state.d_stats, x, draws.get("labels"))
  if not gan.acgan:
    return losses.generator_loss(gan.loss, fake_out), {}
  fake_out, fake_classes = fake_out
  terms = dict(g_class=_class_loss(fake_classes, draws["labels"]))
  g_loss = losses.generator_loss(gan.loss, fake_out)
  return g_loss + state.hparams["acgan_weight"] * terms["g_class"], terms


def _generator_update(gan: GAN, state: TrainState, fake, g_vjp, draws, critic_inputs, critic):
  """One G update through the D of `critic` (a TrainState), backpropagated into G by `g_vjp` of
  `fake`."""
  seen = state.replace(
    d_params=critic.d_params, d_stats=critic.d_stats, d_opt_state=critic.d_opt_state
  )
  loss_of_fake = lambda fake: generator_loss(gan, seen, fake, draws, critic_inputs)
  (g_loss, terms), loss_grad_fake = jax.value_and_grad(loss_of_fake, has_aux=True)(fake)
  (grads,) = g_vjp(loss_grad_fake)
  grads = lax.pmean(grads, DATA_AXIS)
  updates, g_opt_state = gan.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  decay = state.hparams["ema_decay"]
  ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, g_params)
  state = state.replace(g_params=g_params, g_opt_state=g_opt_state, ema_params=ema_params)
  return state, dict(g_loss=g_loss, g_grad_norm=optax.global_norm(grads), **terms)


def _generate(gan: GAN, params, stats, d):
  """Train-mode samples of G for the draws `d`, and G's updated statistics."""
  if not gan.pac_member_batches or gan.pac == 1:
    return _apply(gan.generator, params, stats, d["z"], d.get("labels"))

  # PacGAN's Stacked-MNIST code calls G once per pack member, so each BatchNorm batch holds one
  # member of every pack, and the running statistics move once per call, in turn.
  def member(stats, z):
    fake, stats = _apply(gan.generator, params, stats, z)
    return stats, fake

  members = jnp.swapaxes(d["z"].reshape(-1, gan.pac, gan.nz), 0, 1)
  stats, fakes = lax.scan(member, stats, members)
  return jnp.swapaxes(fakes, 0, 1).reshape(-1, *fakes.shape[2:]), stats


def train_step(gan: GAN, state: TrainState, batch, key):
  """n_critic D updates, then g_steps G updates.

  batch: this device's (n_critic, batch * pac / devices, ...) slice of the global batch (with the
  labels of a conditional GAN beside it). key: the run's root key; the step's randomness is
  fold_in(key, step). Noise is drawn for the whole global batch and sliced per device, so 1 device
  and N devices see the same numbers.
  """
  examples, labels = batch if gan.num_classes else (batch, None)
  real = to_model_range(examples)
  image_size = real.shape[2:4]
  noise_key, eps_key = jax.random.split(jax.random.fold_in(key, state.step))
  samples = gan.global_batch * gan.pac
  draws = _draw(gan, noise_key, (gan.n_critic, samples), image_size)
  gp_eps = _local_slice(jax.random.uniform(eps_key, (gan.n_critic, gan.global_batch)), 1)

  generate = functools.partial(_generate, gan)
  before = state

  if gan.n_critic == 1:
    # The D and the G update share one generated batch, as pytorch/examples dcgan.
    draws = jax.tree.map(lambda x: x[0], draws)
    last = 0
    fake, g_vjp, g_stats = jax.vjp(
      lambda p: generate(p, state.g_stats, draws), state.g_params, has_aux=True
    )
    state, d_metrics = _critic_update(
      gan,
      state.replace(g_stats=g_stats),
      real[0],
      None if labels is None else labels[0],
      lax.stop_gradient(fake),
      draws,
      gp_eps[0],
    )
  else:
    # A scan compiles one critic update, not n_critic copies. G's update then draws noise of its
    # own, as WGAN's and WGAN-GP's Algorithm 1 do.
    def critic_update(state, inputs):
      real_i, labels_i, draws_i, eps_i = inputs
      fake, g_stats = generate(state.g_params, state.g_stats, draws_i)
      state = state.replace(g_stats=g_stats)
      return _critic_update(gan, state, real_i, labels_i, fake, draws_i, eps_i)

    state, d_metrics = lax.scan(critic_update, state, (real, labels, draws, gp_eps))
    d_metrics = jax.tree.map(lambda m: m[-1], d_metrics)
    last = -1
    draws = _draw(gan, jax.random.fold_in(noise_key, 1), (samples,), image_size)
    fake, g_vjp = jax.vjp(lambda p: generate(p, state.g_stats, draws)[0], state.g_params)
  # An unrolled G's loss looks ahead from D's last update, on that update's real batch.
  critic_inputs = (real[last], None if labels is None else labels[last], gp_eps[last])
  # Simultaneous updates (ALI's algorithm) take G's gradient at the D of the step's start.
  critic = before if gan.simultaneous_updates else state
  state, g_metrics = _generator_update(gan, state, fake, g_vjp, draws, critic_inputs, critic)
  for _ in range(gan.g_steps - 1):  # again on the same noise, through G's new weights
    fake, g_vjp, g_stats = jax.vjp(
      functools.partial(generate, stats=state.g_stats, d=draws), state.g_params, has_aux=True
    )
    state = state.replace(g_stats=g_stats)
    state, g_metrics = _generator_update(gan, state, fake, g_vjp, draws, critic_inputs, critic)
  metrics = lax.pmean({**d_metrics, **g_metrics}, DATA_AXIS)
  return state.replace(step=state.step + 1), metrics


def generate(gan: GAN, params, g_stats, z, labels=None):
  """Samples from G in eval mode (BatchNorm uses its running statistics)."""
  return gan.generator.apply({"params": params, **g_stats}, z, train=False, labels=labels)
