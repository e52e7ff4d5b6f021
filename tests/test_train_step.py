"""The data-parallel step: 1 device and 4 devices compute the same training run."""

import ctypes
import os
import platform
import re
import resource

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import cpu, data, experiment, losses, models, parallel, train_step
from gan_jax.models import layers
from gan_jax.train_step import DATA_AXIS, generator_loss, pack

from conftest import mnist_test_set, run_python, tiny_dcgan_config, tiny_toy_config


@pytest.fixture(scope="module")
def mnist_test_images(shared_data):
  return mnist_test_set(shared_data)


def run_steps(config, num_devices, examples, num_steps=20):
  """Loss curve of `num_steps` steps of the experiment's step on a mesh of `num_devices`, fed by
  the input pipeline as training feeds it (labelled `examples` when conditional)."""
  config = config_lib.validated(config)
  config.parallel.num_devices = num_devices
  if examples is not None and not config.model.num_classes:
    examples = data.Examples(examples.images)
  dataset = data.create(config, 0, data.samples_per_batch(config), examples)
  config.data.shape = dataset.shape
  exp = experiment.build(config, parallel.make_mesh(num_devices))
  state, key = exp.init_state(), experiment.run_keys(config.seed)["train"]
  history = []
  for batch in map(exp.shard_batch, data.prefetch(dataset, 0, num_steps)):
    state, metrics = exp.step(state, batch, key)
    history.append(jax.device_get(metrics))
  return {k: np.array([m[k] for m in history]) for k in history[0]}, state


CASES = {
  # synced BatchNorm in G and D, the DCGAN game
  "dcgan": lambda: tiny_dcgan_config(),
  # critic scan (n_critic=2), gradient penalty, LayerNorm critic
  "wgan_gp": lambda: tiny_dcgan_config(
    **{
      "loss": "wgan_gp",
      "n_critic": 2,
      "model.d_norm": "layer",
      "optimizer.d.b1": 0.0,
      "optimizer.g.b1": 0.0,
    }
  ),
  # class-conditional (ACGAN, conditional BN), spectral norm in G and D (its power-iteration
  # state), DiffAugment's random ops, the critic scan over labels, a linear learning-rate decay
  "conditional_sn_diffaugment": lambda: tiny_dcgan_config(
    **{
      "loss": "hinge",
      "n_critic": 2,
      "model.num_classes": 10,
      "model.conditioning": "acgan",
      "model.d_norm": "none",
      "model.g_spectral_norm": True,
      "model.d_spectral_norm": True,
      "augment.policy": "color,translation,cutout",
      "optimizer.g.schedule": "linear",
      "optimizer.d.schedule": "linear",
      "train.decay_steps": 40,
    }
  ),
  # PacGAN's packs of 3 (the data's examples and G's samples), G's loss through 2 unrolled D
  # updates (Unrolled GAN). G without BatchNorm: the gradient of a bias that BatchNorm cancels is
  # rounding noise, which Adam scales up to lr-sized steps that differ between 1 and 4 devices.
  "pacgan_unrolled": lambda: tiny_toy_config(pac=3, unroll_steps=2, **{"model.g_norm": "none"}),
  # packs of 2 whose members G generates as BatchNorm batches of their own (synced per member)
  "pacgan_member_batches": lambda: tiny_dcgan_config(pac=2, pac_member_batches=True),
  # weight clipping, RMSProp, R1, EMA, BatchNorm MLP on 2-D points
  "wgan_clip_r1_ema": lambda: tiny_toy_config(
    **{
      "loss": "wasserstein",
      "clip_value": 0.05,
      "r1_gamma": 1.0,
      "ema_decay": 0.9,
      "optimizer.d.name": "rmsprop",
    }
  ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_device_equals_four_devices(case, mnist_test_images):
  assert jax.device_count() == 4
  one, state_one = run_steps(CASES[case](), 1, mnist_test_images)
  four, state_four = run_steps(CASES[case](), 4, mnist_test_images)
  for key in ("d_loss", "g_loss", "d_real", "d_fake"):
    np.testing.assert_allclose(four[key], one[key], rtol=2e-4, atol=2e-5, err_msg=key)
  # the runs really trained (losses move), and G ended in the same place on 1 and 4 devices, as
  # did both networks' statistics (BatchNorm's, spectral norm's power-iteration vectors)
  assert np.all(np.isfinite(one["d_loss"])) and one["d_loss"].std() > 0
  assert np.all(np.isfinite(one["g_grad_norm"])) and np.all(one["g_grad_norm"] > 0)
  for part in ("g_params", "g_stats", "d_stats"):
    chex.assert_trees_all_close(
      jax.device_get(getattr(state_one, part)),
      jax.device_get(getattr(state_four, part)),
      rtol=2e-3,
      atol=2e-4,
    )


def test_bfloat16_compute_tracks_float32(mnist_test_images):
  """model.dtype=bfloat16: parameters and losses stay float32, and the loss curve stays near the
  float32 one (bf16 keeps ~3 significant digits)."""
  curves = {}
  for dtype in ("float32", "bfloat16"):
    curves[dtype], state = run_steps(
      tiny_dcgan_config(**{"model.dtype": dtype}), 1, mnist_test_images, num_steps=5
    )
  assert all(p.dtype == np.float32 for p in jax.tree.leaves(state.g_params))
  assert curves["bfloat16"]["d_loss"].dtype == np.float32
  np.testing.assert_allclose(curves["bfloat16"]["d_loss"], curves["float32"]["d_loss"], rtol=0.05)
  assert not np.array_equal(curves["bfloat16"]["d_loss"], curves["float32"]["d_loss"])


def test_cpu_step_runs_standard_xla_convolutions_and_ynnpack_matmuls():
  """cpu.COMPILER_OPTIONS reach the compiled step: its convolutions are XLA's own
  (Eigen), while matmuls still go to YNNPACK (a renamed or ignored option would fail here). And
  every convolution inside a scan (the critic loop), the weight gradient and the input gradient of
  a stride-1 3x3 conv (SNGAN's) included, has standard dimension numbers: XLA:CPU runs any other
  form inside a loop body with a generic loop, 2-10x slower."""
  mesh = parallel.make_mesh(1)
  x = np.ones((2, 8, 8, 32), np.float32)  # YNNPACK-sized
  w = (np.ones((4, 4, 32, 32), np.float32), np.ones((3, 3, 32, 32), np.float32))

  def forward(w, x):
    return layers.conv(layers.conv(x, w[0], 2, 1), w[1], 1, 1)

  def step(w, x, key):  # the train step's (state, batch, key) -> (state, metrics)
    def update(w, _):
      grads = jax.grad(lambda w: jnp.sum(forward(w, x[0]) ** 2))(w)
      return jax.tree.map(lambda p, g: p - 1e-3 * g, w, grads), None

    w, _ = jax.lax.scan(update, w, None, length=2)
    y = forward(w, x[0])
    return w, y.reshape(2, -1) @ y.reshape(-1, 2)

  hlo = parallel.parallelize(step, mesh).lower(w, x[None], jax.random.key(0)).compile().as_text()
  fused_ops = [line for line in hlo.splitlines() if re.search(r"%ynn_fusion[.0-9]* = ", line)]
  assert fused_ops and not any("conv_general_dilated" in line for line in fused_ops)
  assert any("dot_general" in line for line in fused_ops)
  convolutions = [line for line in hlo.splitlines() if " convolution(" in line]
  assert len(convolutions) >= 2  # the forward conv and the scanned weight gradient
  assert all("dim_labels=b01f_01io->b01f" in line for line in convolutions), convolutions


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_cpu_runs_reuse_the_memory_a_step_frees(monkeypatch):
  """XLA:CPU mallocs each step's temporary buffer afresh. After
  cpu.reuse_freed_memory, a freed 40 MB block comes back without page faults; glibc's
  default unmaps it on free, and the next one faults in all of its ~10k pages again."""
  for name in [n for n in os.environ if n.startswith("MALLOC_")] + ["GLIBC_TUNABLES"]:
    monkeypatch.delenv(name, raising=False)
  cpu.reuse_freed_memory(parallel.make_mesh(1))
  libc = ctypes.CDLL(None)
  libc.malloc.restype = ctypes.c_void_p

  def page_faults_of_a_fresh_block(size=40 << 20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(ctypes.c_void_p(block))
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

  page_faults_of_a_fresh_block()
  assert page_faults_of_a_fresh_block() < 1000


# In a fresh process (JAX reads the setting when it starts its CPU client): the share of a
# ~0.3 s computation's time spent before its call returns.
_DISPATCH_SHARE = """
import sys, time, jax, jax.numpy as jnp
from gan_jax import config, cpu
c = config.experiment_module(sys.argv[1]).get_config()
cpu.configure(c.parallel.cpu_devices, c.parallel.cpu_async_dispatch)
f = jax.jit(lambda x: jax.lax.fori_loop(0, 20, lambda i, y: jnp.tanh(y @ x), x))
x = jnp.ones((1000, 1000)) / 1000
jax.block_until_ready(f(x))
tic = time.perf_counter(); y = f(x); returned = time.perf_counter() - tic
jax.block_until_ready(y)
print(returned / (time.perf_counter() - tic))
"""


@pytest.mark.parametrize("experiment, synchronous", [("dcgan", True), ("toy_ring", False)])
def test_cpu_steps_run_on_the_calling_thread_except_the_toys(experiment, synchronous):
  """config.parallel.cpu_async_dispatch reaches JAX: a DCGAN's computation runs on the caller's
  thread (the call returns when it is done), a toy's is handed to XLA's dispatch thread."""
  out = run_python("-c", _DISPATCH_SHARE, f"experiments/{experiment}.py")
  assert out.returncode == 0, out.stderr
  share = float(out.stdout.strip().splitlines()[-1])
  assert share > 0.9 if synchronous else share < 0.5


def test_with_several_critic_updates_g_draws_fresh_noise(mnist_test_images):
  """WGAN's Algorithm 1: G's update samples noise of its own. With D frozen (a negligible learning
  rate), step 1's g_loss is D(G(z)) of that fresh noise, not of the last critic batch's."""
  config = tiny_toy_config(
    **{"loss": "wasserstein", "n_critic": 2, "optimizer.d.lr": 1e-30, "parallel.num_devices": 1}
  )
  metrics, _ = run_steps(config, 1, mnist_test_images, num_steps=1)
  config = config_lib.validated(config)
  config.data.shape = (2,)
  exp = experiment.build(config, parallel.make_mesh(1))
  state = exp.init_state()
  noise_key, _ = jax.random.split(jax.random.fold_in(experiment.run_keys(config.seed)["train"], 0))
  critic_noise = jax.random.normal(noise_key, (2, config.train.batch_size, config.model.nz))
  fresh_noise = jax.random.normal(jax.random.fold_in(noise_key, 1), critic_noise.shape[1:])

  generator, discriminator = models.build(config, (2,))  # BatchNorm over this one batch

  def g_loss(z):
    fake = generator.apply(
      {"params": state.g_params, **state.g_stats}, z, train=True, mutable=["batch_stats"]
    )[0]
    return -jnp.mean(discriminator.apply({"params": state.d_params}, fake, train=True))

  np.testing.assert_allclose(metrics["g_loss"][0], g_loss(fresh_noise), rtol=1e-5)
  assert abs(g_loss(critic_noise[-1]) - g_loss(fresh_noise)) > 1e-3


def test_a_second_g_update_takes_the_same_noise_through_g_s_new_weights(mnist_test_images):
  """g_steps=2 (PacGAN's Stacked-MNIST code): with D frozen, step 1's g_loss is that of G after
  one update (the g_steps=1 run's G) on the step's noise, drawn from U(-1, 1) (model.noise);
  Adam then counts two G updates."""
  fields = {"model.g_norm": "none", "optimizer.d.lr": 1e-30, "model.noise": "uniform"}
  twice, state_twice = run_steps(tiny_toy_config(g_steps=2, **fields), 1, None, num_steps=1)
  _, state_once = run_steps(tiny_toy_config(**fields), 1, None, num_steps=1)
  config = config_lib.validated(tiny_toy_config(**fields))
  noise_key, _ = jax.random.split(jax.random.fold_in(experiment.run_keys(config.seed)["train"], 0))
  z = jax.random.uniform(noise_key, (1, config.train.batch_size, 2), minval=-1.0)[0]
  generator, discriminator = models.build(config, (2,))
  fake = generator.apply({"params": state_once.g_params}, z, train=True)
  d_out = discriminator.apply({"params": state_once.d_params}, fake, train=True)
  expected = losses.generator_loss(config.loss, d_out)
  np.testing.assert_allclose(twice["g_loss"][0], expected, rtol=1e-5)
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), state_twice.g_params, state_once.g_params)
  assert max(jax.tree.leaves(moved)) > 1e-6
  assert int(state_twice.g_opt_state.count) == 2 and int(state_twice.d_opt_state.count) == 1
  # sample grids and evaluations draw G's noise from the same distribution
  config.data.shape = (2,)
  key = jax.random.key(3)
  np.testing.assert_array_equal(
    experiment.build(config, parallel.make_mesh(1)).noise(key, 50),
    jax.random.uniform(key, (50, config.model.nz), minval=-1.0),
  )


def test_pack_members_can_be_generated_as_batchnorm_batches_of_their_own():
  """pac_member_batches (PacGAN's Stacked-MNIST code calls G once per pack member): member j of
  every pack comes from a train-mode G call on the noise of the members j alone, the calls move
  BatchNorm's running statistics in turn, and D judges the packs that these samples form."""
  config = config_lib.validated(tiny_toy_config(pac=2, pac_member_batches=True))
  metrics, state = run_steps(config, 1, None, num_steps=1)
  config.data.shape = (2,)
  start = experiment.build(config, parallel.make_mesh(1)).init_state()
  noise_key, _ = jax.random.split(jax.random.fold_in(experiment.run_keys(config.seed)["train"], 0))
  z = jax.random.normal(noise_key, (1, 2 * config.train.batch_size, config.model.nz))[0]
  generator, discriminator = models.build(config, (2,))
  stats, members = start.g_stats, []
  for j in range(2):
    fake, stats = generator.apply(
      {"params": start.g_params, **stats}, z[j::2], train=True, mutable=["batch_stats"]
    )
    members.append(fake)
  fake = np.stack(members, axis=1).reshape(-1, 2)
  d_out = discriminator.apply({"params": start.d_params}, pack(fake, 2), train=True)
  np.testing.assert_allclose(metrics["d_fake"][0], jax.nn.sigmoid(d_out).mean(), rtol=1e-5)
  chex.assert_trees_all_close(jax.device_get(state.g_stats), dict(stats), rtol=1e-5, atol=1e-6)
  # one BatchNorm batch of all the samples gives other statistics
  _, together = run_steps(tiny_toy_config(pac=2), 1, None, num_steps=1)
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), together.g_stats, state.g_stats)
  assert max(jax.tree.leaves(moved)) > 1e-3


def test_simultaneous_updates_take_g_s_gradient_at_the_d_before_the_step():
  """simultaneous_updates (ALI's algorithm, PacGAN's 2-D code): D's update is the usual one, and
  G's equals the usual G update after a D update that left D where it was (D's rate 0)."""

  def build(simultaneous):
    config = config_lib.validated(tiny_toy_config(simultaneous_updates=simultaneous))
    config.data.shape = (2,)
    return experiment.build(config, parallel.make_mesh(1))

  simultaneous, alternating = build(True), build(False)
  config = simultaneous.config
  key = experiment.run_keys(config.seed)["train"]
  batch = data.create(config, 0, data.samples_per_batch(config)).batch(0)
  step = lambda exp, state: exp.step(state, exp.shard_batch(batch), key)  # donates `state`
  together, metrics = step(simultaneous, simultaneous.init_state())
  in_turn, _ = step(alternating, alternating.init_state())
  d_frozen = train_step.with_number(alternating.init_state(), "optimizer.d.lr", jnp.float32(0.0))
  after_frozen_d, frozen_metrics = step(alternating, d_frozen)
  chex.assert_trees_all_equal(together.d_params, in_turn.d_params)
  for part in ("g_params", "g_stats", "g_opt_state", "ema_params"):
    chex.assert_trees_all_close(
      getattr(together, part), getattr(after_frozen_d, part), rtol=1e-6, atol=1e-7
    )
  np.testing.assert_allclose(metrics["g_loss"], frozen_metrics["g_loss"], rtol=1e-6)
  # the alternating update, through the updated D, moves G elsewhere
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), together.g_params, in_turn.g_params)
  assert max(jax.tree.leaves(moved)) > 1e-6


def test_ema_weights_are_sampled_with_batchnorm_statistics_of_their_own():
  """G's running statistics belong to its own weights. With EMA weights far from them (here 3x
  the first layer), samples use standing statistics of the EMA weights: eval mode then gives
  what train mode (batch statistics) gives on a large batch, and the stored statistics do not."""
  config = config_lib.validated(tiny_toy_config(ema_decay=0.5))
  config.data.shape = (2,)
  exp = experiment.build(config, parallel.make_mesh(1))
  state = exp.init_state()
  first = "Dense_0"
  ema = {**state.g_params, first: jax.tree.map(lambda p: 3.0 * p, state.g_params[first])}
  state = state.replace(ema_params=ema)
  z = exp.noise(jax.random.key(7), 2048)
  generator = models.build(config, (2,))[0]
  batch_mode = generator.apply(
    {"params": ema, **state.g_stats}, z, train=True, mutable=["batch_stats"]
  )[0]
  stored = generator.apply({"params": ema, **state.g_stats}, z, train=False)
  error = lambda samples: np.abs(samples - batch_mode).mean() / np.abs(batch_mode).mean()
  assert error(exp.sample(state, z)) < 0.25 and error(stored) > 1.0, (
    error(exp.sample(state, z)),
    error(stored),
  )


def test_toy_samples_come_from_one_program_in_one_call():
  """A toy run's 2,500 evaluation points are G's outputs for all the noise at once: one
  compiled sampler (1,000-sample chunks would need two, for 1,000 and 500), the same points."""
  config = config_lib.validated(tiny_toy_config())
  config.data.shape = (2,)
  exp = experiment.build(config, parallel.make_mesh(1))
  state = exp.init_state()
  z = exp.noise(jax.random.key(0), 2500)
  samples = exp.sample(state, z)
  assert exp._generate._cache_size() == 1
  one_call = experiment.generate(exp.gan, state.ema_params, state.g_stats, z)
  np.testing.assert_array_equal(samples, one_call)


def test_linear_schedule_scales_the_state_learning_rate_down_to_zero():
  """Adam on a constant gradient moves each parameter by lr per update; a linear schedule over 4
  updates scales those moves by 1, 3/4, 1/2, 1/4, and 0 after; the rate in the state is kept."""
  config = config_lib.validated(
    tiny_toy_config(
      **{"optimizer.g.lr": 0.1, "optimizer.g.schedule": "linear", "train.decay_steps": 4}
    )
  )
  config.data.shape = (2,)
  tx = experiment.build(config, parallel.make_mesh(1)).gan.g_tx
  params, grads = jnp.zeros(2), jnp.ones(2)
  state = tx.init(params)
  moves = []
  for _ in range(5):
    updates, state = tx.update(grads, state, params)
    moves.append(float(-updates[0]))
  np.testing.assert_allclose(moves, [0.1, 0.075, 0.05, 0.025, 0.0], rtol=1e-5, atol=1e-7)
  assert float(state[0].hyperparams["learning_rate"]) == pytest.approx(0.1)


def test_packs_concatenate_consecutive_samples_along_features_and_channels():
  vectors = np.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(pack(vectors, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = np.random.default_rng(0).random((4, 5, 5, 3)).astype(np.float32)
  packed = pack(images, 2)
  assert packed.shape == (2, 5, 5, 6)
  np.testing.assert_array_equal(packed[1], np.concatenate([images[2], images[3]], axis=-1))
  assert pack(images, 1) is images


@pytest.mark.parametrize("pac", [1, 4])
def test_packed_d_sees_pac_times_the_features_and_the_data_pac_times_the_examples(pac):
  config = config_lib.validated(tiny_toy_config(pac=pac))
  dataset = data.create(config, 0, data.samples_per_batch(config))
  assert dataset.batch(0).shape == (1, 32 * pac, 2)
  config.data.shape = dataset.shape
  state = experiment.build(config, parallel.make_mesh(1)).init_state()
  assert state.d_params["Dense_0"]["kernel"].shape[0] == 2 * pac


def test_unrolled_generator_gradient_matches_finite_differences():
  """Metz et al.: G's gradient flows through the k D updates (Adam's rule included). The autodiff
  gradient equals central differences of the loss itself, and differs from the gradient that
  holds D fixed. A tiny LeakyReLU MLP D after 10 steps, so that Adam's moments are no longer its
  first step's sign(g); one device."""
  config = lambda unroll_steps: tiny_toy_config(
    unroll_steps=unroll_steps, **{"model.d_maxout": 0, "optimizer.d.lr": 1e-3}
  )
  _, state = run_steps(config(3), 1, None, num_steps=10)
  rng = np.random.default_rng(0)
  real, fake = (jnp.asarray(rng.normal(size=(32, 2)), jnp.float32) for _ in range(2))

  def loss_fn(unroll_steps):
    gan_config = config_lib.validated(config(unroll_steps))
    gan_config.data.shape = (2,)
    gan = experiment.build(gan_config, parallel.make_mesh(1)).gan
    inputs = (real, None, jnp.full((32,), 0.5))
    per_device = lambda f: generator_loss(gan, state, f, {}, inputs)[0]
    # jitted: op by op, the k unrolled D updates were some 400 compiles of their own
    return jax.jit(lambda fake: jax.vmap(per_device, axis_name=DATA_AXIS)(fake[None])[0])

  loss = loss_fn(unroll_steps=3)
  direction = np.random.default_rng(1).normal(size=fake.shape).astype(np.float32)
  direction /= np.linalg.norm(direction)
  h = 3e-3
  finite = (loss(fake + h * direction) - loss(fake - h * direction)) / (2 * h)
  gradient = jax.jit(jax.grad(loss))(fake)
  np.testing.assert_allclose(float(jnp.vdot(gradient, direction)), finite, rtol=1e-2)
  plain = float(jnp.vdot(jax.jit(jax.grad(loss_fn(unroll_steps=0)))(fake), direction))
  assert abs(plain - float(finite)) > 0.5 * abs(finite)
