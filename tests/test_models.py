"""Model shapes, the pytorch/examples parameter counts, and the fast Conv and ConvTranspose."""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

from gan_jax import UserError
from gan_jax.models import dcgan, layers, mlp, resnet, tf_dcgan

from conftest import param_count


def test_dcgan64_has_pytorch_examples_parameter_counts():
  """pytorch/examples dcgan/main.py with nz=100, ngf=ndf=64: G 3,576,704, D 2,765,568."""
  shape = (64, 64, 3)
  assert param_count(dcgan.Generator(shape, 64), jnp.zeros((1, 100))) == 3_576_704
  assert param_count(dcgan.Discriminator(shape, 64), jnp.zeros((1, *shape))) == 2_765_568


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_shapes(shape):
  g, d = dcgan.Generator(shape, 8), dcgan.Discriminator(shape, 8)
  z = jnp.zeros((2, 10))
  g_vars = jax.jit(functools.partial(g.init, train=False))(jax.random.key(0), z)
  images = jax.jit(functools.partial(g.apply, train=False))(g_vars, z)
  chex.assert_shape(images, (2, *shape))
  d_vars = jax.jit(functools.partial(d.init, train=False))(jax.random.key(1), images)
  chex.assert_shape(jax.jit(functools.partial(d.apply, train=False))(d_vars, images), (2,))


def test_dcgan_rejects_unsupported_resolution():
  with pytest.raises(UserError, match="4\\*2\\^k or 7\\*2\\^k"):
    dcgan.resolution_factors(30)


def test_mlp_shapes_and_maxout():
  g = mlp.Generator((28, 28, 1), (16,), norm="batch")
  d = mlp.Discriminator((16, 8), maxout=5)
  z = jnp.ones((3, 4))
  images = g.apply(g.init(jax.random.key(0), z, train=False), z, train=False)
  chex.assert_shape(images, (3, 28, 28, 1))
  d_vars = d.init(jax.random.key(0), images, train=False)
  assert d_vars["params"]["Dense_0"]["kernel"].shape == (784, 80)
  chex.assert_shape(d.apply(d_vars, images, train=False), (3,))


def _reference_conv(x, w, stride, padding):
  return jax.lax.conv_general_dilated(
    x, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def _reference_conv_transpose(x, w, stride, padding):
  """The plain lax op: PyTorch ConvTranspose2d is lax.conv_transpose with a flipped kernel."""
  k = w.shape[0]
  return jax.lax.conv_transpose(
    x,
    w,
    (stride, stride),
    [(k - 1 - padding,) * 2] * 2,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    transpose_kernel=True,
  )


def _assert_same_function(fast, reference, x, w):
  """Equal outputs, equal gradients for a random output cotangent, and equal second-order
  gradients of a gradient-penalty-like term (WGAN-GP and R1 differentiate through the backward)."""
  y = jax.jit(fast)(x, w)
  chex.assert_trees_all_close(y, jax.jit(reference)(x, w), rtol=1e-5, atol=1e-5)
  g = jax.random.normal(jax.random.key(1), y.shape)
  grads = jax.jit(jax.grad(lambda x, w: jnp.sum(fast(x, w) * g), (0, 1)))(x, w)
  grads_ref = jax.jit(jax.grad(lambda x, w: jnp.sum(reference(x, w) * g), (0, 1)))(x, w)
  chex.assert_trees_all_close(grads, grads_ref, rtol=1e-4, atol=1e-4)

  def penalty_grads(f):
    input_grad = jax.grad(lambda x, w: jnp.sum(f(x, w) * g))
    return jax.jit(jax.grad(lambda x, w: jnp.sum(input_grad(x, w) ** 2), (0, 1)))(x, w)

  chex.assert_trees_all_close(penalty_grads(fast), penalty_grads(reference), rtol=1e-4, atol=1e-3)
  return y


# Grow (a ConvTranspose's forward, a Conv's input gradient) with big_channels <= layers.FEW_CHANNELS
# is col2im; with more, one conv per output phase where the kernel is a multiple of the stride (> 1)
# (stride 4 with padding 1 shifts some phases out of range), else lax.
@pytest.mark.parametrize("big_channels", [3, 6])
@pytest.mark.parametrize(
  "kernel,stride,padding,size",
  [(4, 2, 1, 7), (4, 2, 1, 4), (4, 1, 0, 1), (4, 2, 0, 5), (3, 2, 1, 4), (4, 4, 0, 3)],
)
def test_fast_conv_transpose_matches_lax(kernel, stride, padding, size, big_channels):
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (3, size, size, 5))
  w = jax.random.normal(kw, (kernel, kernel, big_channels, 5))
  y = _assert_same_function(
    lambda x, w: layers.conv_transpose(x, w, stride, padding),
    lambda x, w: _reference_conv_transpose(x, w, stride, padding),
    x,
    w,
  )
  # PyTorch's output size: (H - 1) * stride - 2 * padding + kernel
  assert y.shape[1] == (size - 1) * stride - 2 * padding + kernel


@pytest.mark.parametrize("big_channels", [3, 6])
@pytest.mark.parametrize(
  "kernel,stride,padding,size",
  [(4, 2, 1, 8), (4, 2, 1, 7), (4, 1, 0, 4), (4, 2, 0, 9), (3, 2, 1, 8), (4, 4, 1, 10)],
)
def test_fast_conv_matches_lax(kernel, stride, padding, size, big_channels):
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (3, size, size, big_channels))
  w = jax.random.normal(kw, (kernel, kernel, big_channels, 5))
  _assert_same_function(
    lambda x, w: layers.conv(x, w, stride, padding),
    lambda x, w: _reference_conv(x, w, stride, padding),
    x,
    w,
  )


def _tensorflow_tf_dcgan(tf, g_params, d_params, z, ngf, image_shape):
  """carpedm20/DCGAN-tensorflow's G and D in train mode, written with TensorFlow's own ops on our
  parameters: the PacGAN's Stacked-MNIST network as its authors ran it."""
  batch = z.shape[0]

  def bn(x, p):
    mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
    return tf.nn.batch_normalization(x, mean, variance, p["bias"], p["scale"], 1e-5)

  def deconv(x, p, size, channels):
    shape = [batch, size, size, channels]
    y = tf.nn.conv2d_transpose(x, p["kernel"], shape, strides=[1, 2, 2, 1], padding="SAME")
    return y + p["_Bias_0"]["bias"]

  h = tf.matmul(z, g_params["Dense_0"]["kernel"]) + g_params["Dense_0"]["bias"]
  h = tf.nn.relu(bn(tf.reshape(h, [batch, 2, 2, ngf * 8]), g_params["BatchNorm_0"]))
  for i, (size, channels) in enumerate([(4, ngf * 4), (7, ngf * 2), (14, ngf)]):
    h = deconv(h, g_params[f"SameConvTranspose_{i}"], size, channels)
    h = tf.nn.relu(bn(h, g_params[f"BatchNorm_{i + 1}"]))
  images = tf.tanh(deconv(h, g_params["SameConvTranspose_3"], image_shape[0], image_shape[2]))

  h = images
  for i in range(4):
    p = d_params[f"SameConv_{i}"]
    h = tf.nn.conv2d(h, p["kernel"], strides=[1, 2, 2, 1], padding="SAME") + p["_Bias_0"]["bias"]
    if i > 0:
      h = bn(h, d_params[f"BatchNorm_{i - 1}"])
    h = tf.nn.leaky_relu(h, 0.2)
  logits = tf.matmul(tf.reshape(h, [batch, -1]), d_params["Dense_0"]["kernel"])
  return images, logits[:, 0] + d_params["Dense_0"]["bias"][0]


def test_tf_dcgan_computes_what_carpedm20s_tensorflow_network_computes():
  """model tf_dcgan against TensorFlow's conv2d / conv2d_transpose with "SAME" padding and its
  batch norm, on the same weights: the same samples and logits, and the same gradients into z and
  every parameter. At PacGAN's size (28x28x3, nz 100, ngf = ndf = 64) carpedm20's network has
  G 4,514,819 and D 4,310,401 parameters (bias, BatchNorm scale and offset counted)."""
  import tensorflow as tf

  shape = (28, 28, 3)
  assert param_count(tf_dcgan.Generator(shape, 64), jnp.zeros((1, 100))) == 4_514_819
  assert param_count(tf_dcgan.Discriminator(shape, 64), jnp.zeros((1, *shape))) == 4_310_401
  ngf, nz = 8, 16
  g, d = tf_dcgan.Generator(shape, ngf), tf_dcgan.Discriminator(shape, ngf)
  z = jax.random.uniform(jax.random.key(0), (4, nz), minval=-1.0)
  # jitted: op by op, JAX compiled some 570 small programs, and the test took twice as long
  g_vars = jax.jit(lambda: g.init(jax.random.key(1), z, train=False))()
  d_vars = jax.jit(lambda: d.init(jax.random.key(2), jnp.zeros((4, *shape)), train=False))()
  # random BatchNorm scales and offsets, so that the test sees each in its place
  perturb = lambda path, p: p + 0.1 * jax.random.normal(jax.random.key(len(path)), p.shape)
  g_params, d_params = (
    jax.tree_util.tree_map_with_path(perturb, v["params"]) for v in (g_vars, d_vars)
  )

  def ours(g_params, d_params, z):
    images, _ = g.apply({**g_vars, "params": g_params}, z, train=True, mutable=["batch_stats"])
    logits, _ = d.apply({**d_vars, "params": d_params}, images, train=True, mutable=["batch_stats"])
    return images, logits

  weights = jnp.arange(4.0)  # a loss that weighs the samples differently
  grads = jax.jit(jax.grad(lambda *a: jnp.vdot(ours(*a)[1], weights), argnums=(0, 1, 2)))
  images, logits = jax.jit(ours)(g_params, d_params, z)
  tf_vars = jax.tree.map(lambda p: tf.Variable(np.asarray(p)), (g_params, d_params))
  tf_z = tf.Variable(np.asarray(z))
  with tf.GradientTape() as tape:
    tf_images, tf_logits = _tensorflow_tf_dcgan(tf, *tf_vars, tf_z, ngf, shape)
    loss = tf.reduce_sum(tf_logits * np.asarray(weights))
  tf_grads = tape.gradient(loss, (*tf_vars, tf_z))
  np.testing.assert_allclose(images, tf_images.numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(logits, tf_logits.numpy(), rtol=1e-4, atol=1e-5)
  chex.assert_trees_all_close(
    grads(g_params, d_params, z), jax.tree.map(lambda t: t.numpy(), tf_grads), rtol=1e-3, atol=1e-5
  )


def test_sngan32_has_mimicry_parameter_counts():
  """mimicry's SNGAN32 (nz=128, ngf=256, ndf=128): G 4,276,739, D 1,053,825."""
  shape = (32, 32, 3)
  assert param_count(resnet.Generator(shape, 256), jnp.zeros((1, 128))) == 4_276_739
  assert param_count(resnet.Discriminator(shape, 128), jnp.zeros((1, *shape))) == 1_053_825


@pytest.mark.parametrize("shape", [(32, 32, 3), (48, 48, 3)])
@pytest.mark.parametrize("conditioning", ["", "projection", "acgan"])
def test_resnet_shapes(shape, conditioning):
  classes = 3 if conditioning else 0
  g = resnet.Generator(shape, 16, num_classes=classes)
  d = resnet.Discriminator(
    shape, 16, num_classes=classes, conditioning=conditioning or "projection"
  )
  z, labels = jnp.zeros((2, 8)), (jnp.array([0, 2]) if classes else None)
  shapes = lambda module, x: jax.eval_shape(
    lambda: module.apply(
      module.init(jax.random.key(0), x, train=False, labels=labels), x, train=False, labels=labels
    )
  )
  images = jnp.zeros(shapes(g, z).shape)
  chex.assert_shape(images, (2, *shape))
  d_vars = jax.eval_shape(lambda: d.init(jax.random.key(1), images, train=False, labels=labels))
  out = shapes(d, images)
  chex.assert_shape(out, ((2,), (2, 3)) if conditioning == "acgan" else (2,))
  assert set(d_vars) == {"params", "spectral"}  # every D layer spectrally normalised


class _Normalised(nn.Module):
  layer: nn.Module

  @nn.compact
  def __call__(self, x, train: bool):
    return layers.spectral_norm(self.layer, True, train)(x)


@pytest.mark.parametrize(
  "layer, x",
  [(layers.Conv(8, 3, 1, 1), jnp.ones((4, 6, 6, 5))), (nn.Dense(6), jnp.ones((4, 10)))],
  ids=["conv", "dense"],
)
def test_spectral_norm_tracks_the_largest_singular_value(layer, x):
  """After 300 training updates (one power iteration each), the layer's sigma is within 2% of
  the largest singular value of its reshaped kernel, and outside training u is never written."""
  module = _Normalised(layer)
  variables = module.init(jax.random.key(0), x, train=False)
  target = jax.random.normal(jax.random.key(1), module.apply(variables, x, train=False).shape)

  def update(variables, _):
    def loss(params):
      out, stats = module.apply(
        {**variables, "params": params}, x, train=True, mutable=[layers.SPECTRAL]
      )
      return jnp.mean((out - target) ** 2), stats

    grads, stats = jax.grad(loss, has_aux=True)(variables["params"])
    params = jax.tree.map(lambda p, g: p - 0.1 * g, variables["params"], grads)
    return {"params": params, **stats}, None

  variables, _ = jax.jit(lambda v: jax.lax.scan(update, v, None, length=300))(variables)
  _, stats = module.apply(variables, x, train=True, mutable=[layers.SPECTRAL])
  sigma = next(v for k, v in flatten_dict(stats).items() if k[-1].endswith("sigma"))
  kernel = next(v for k, v in flatten_dict(variables["params"]).items() if k[-1] == "kernel")
  largest = np.linalg.svd(np.asarray(kernel).reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
  np.testing.assert_allclose(float(sigma), largest, rtol=0.02)
  _, unchanged = module.apply(variables, x, train=False, mutable=[layers.SPECTRAL])
  chex.assert_trees_all_equal(unchanged[layers.SPECTRAL], variables[layers.SPECTRAL])


def test_conditional_batch_norm_is_per_class():
  """Two classes with different gains and biases: each sample is normalised by the batch's
  statistics, then scaled and shifted by its own class's parameters."""
  bn = layers.ConditionalBatchNorm(2, train=True)
  x = jax.random.normal(jax.random.key(0), (4, 3, 3, 2))
  labels = jnp.array([0, 1, 1, 0])
  variables = bn.init(jax.random.key(1), x, labels)
  params = {"gain": {"embedding": jnp.array([[1.0, 2.0], [3.0, 4.0]])}}
  params["bias"] = {"embedding": jnp.array([[0.0, 1.0], [-1.0, 0.5]])}
  out, _ = bn.apply({**variables, "params": params}, x, labels, mutable=["batch_stats"])
  normalised = (x - x.mean((0, 1, 2))) / jnp.sqrt(x.var((0, 1, 2)) + 1e-5)
  expected = normalised * params["gain"]["embedding"][labels][:, None, None]
  expected += params["bias"]["embedding"][labels][:, None, None]
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
