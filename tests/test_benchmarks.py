"""The benchmarks stay runnable, and the PyTorch reference is the same network as ours."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import experiment, parallel
from gan_jax.models import dcgan, layers, resnet

from conftest import ROOT, param_count, run_python, tiny_dcgan_config

sys.path.insert(0, str(ROOT / "benchmarks"))  # torch_dcgan, accelerator


def test_train_speed_writes_its_table_and_json(tmp_path):
  out = tmp_path / "speed.json"
  result = run_python(
    "benchmarks/train_speed.py",
    "--experiments=toy_ring@2",
    "--repeats=2",
    "--seconds=0.05",
    f"--json={out}",
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  # @2: two CPU devices whatever XLA_FLAGS says (4 in tests), with the collective timeout flags
  assert "| toy_ring@2 | 2 | 100 | 2 |" in result.stdout
  row = json.loads(out.read_text())["rows"][0]
  assert row["it_per_s"]["median"] > 0 and row["gflop_per_it"] > 0 and row["compile_s"] > 0
  assert row["pipeline_images_per_s"] > 0 and row["peak_rss_mb"] > 0


@pytest.mark.parametrize("shape", [(28, 28, 1), (64, 64, 3)])
def test_torch_reference_is_our_dcgan(shape):
  pytest.importorskip("torch")
  import torch_dcgan

  # BatchNorm's affine parameters are parameters on both sides; running statistics on neither.
  torch_g = sum(p.numel() for p in torch_dcgan.generator(shape).parameters())
  torch_d = sum(p.numel() for p in torch_dcgan.discriminator(shape).parameters())
  assert torch_g == param_count(dcgan.Generator(shape, 64), jnp.zeros((1, 100)))
  assert torch_d == param_count(dcgan.Discriminator(shape, 64), jnp.zeros((1, *shape)))
  step = torch_dcgan.make_step(shape, batch_size=4)
  d_loss, g_loss = step(torch_dcgan.random_batches(shape, 4, count=1)[0])
  assert np.isfinite(d_loss) and np.isfinite(g_loss)


@pytest.mark.parametrize("num_classes", [0, 10])
def test_torch_reference_is_our_sngan(num_classes):
  """mimicry's SNGAN32 in PyTorch (and its projection cGAN) has our ResNets' parameter counts."""
  pytest.importorskip("torch")
  import torch_dcgan
  import torch_sngan

  shape = (32, 32, 3)
  g = resnet.Generator(shape, 256, num_classes=num_classes)
  d = resnet.Discriminator(shape, 128, num_classes=num_classes)
  count = lambda net: sum(p.numel() for p in net.parameters())
  torch_g, torch_d = (
    torch_sngan.Generator(128, 256, num_classes),
    torch_sngan.Discriminator(128, num_classes),
  )
  assert count(torch_g) == param_count(g, jnp.zeros((1, 128)), num_classes)
  assert count(torch_d) == param_count(d, jnp.zeros((1, *shape)), num_classes)
  if not num_classes:
    assert (count(torch_g), count(torch_d)) == (4_276_739, 1_053_825)
  step = torch_sngan.make_step(shape, batch_size=2, ngf=16, ndf=16, num_classes=num_classes)
  d_loss, g_loss = step(torch_dcgan.random_batches(shape, 2, count=1)[0])
  assert np.isfinite(d_loss) and np.isfinite(g_loss)


def test_lax_layers_replace_the_custom_conv_ops(monkeypatch):
  """accelerator.py --layers=lax: the layers' ops become plain lax, same values, no custom VJP."""
  import accelerator

  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 6))
  modules = [layers.Conv(4), layers.ConvTranspose(3)]
  variables = [m.init(jax.random.key(1), x) for m in modules]
  ours = [m.apply(v, x) for m, v in zip(modules, variables)]
  monkeypatch.setattr(layers, "conv", layers.conv)  # restored after the test
  monkeypatch.setattr(layers, "conv_transpose", layers.conv_transpose)
  accelerator.use_lax_layers()
  for module, v, y in zip(modules, variables, ours):
    np.testing.assert_allclose(module.apply(v, x), y, rtol=1e-5, atol=1e-5)
    loss = lambda v, module=module: jnp.sum(module.apply(v, x) ** 2)
    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(v))
    assert "custom_vjp" not in jaxpr and "conv_general_dilated" in jaxpr
  transpose_jaxpr = str(jax.make_jaxpr(modules[1].apply)(variables[1], x))
  assert "lhs_dilation=(2, 2)" in transpose_jaxpr  # lax's input-dilated transpose


def test_accelerator_script_runs_with_lax_layers(tmp_path):
  out = tmp_path / "accelerator.json"
  result = run_python(
    "benchmarks/accelerator.py",
    "--batch=4",
    "--seconds=0.01",
    "--repeats=1",
    "--matmul_size=64",
    "--experiment=dcgan",
    "--layers=lax",
    f"--json={out}",
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads(out.read_text())
  assert report["layers"] == "lax"
  assert [row["dtype"] for row in report["rows"]] == ["float32", "bfloat16"]
  for row in report["rows"]:
    assert row["it_per_s"] > 0 and row["tflop_per_it"] > 0 and row["matmul_tflop_per_s"] > 0


def test_flop_count_counts_every_critic_update():
  """XLA's cost analysis counts a loop body once; step_flops counts the critic scan unrolled, so
  each further critic update adds the same FLOPs."""
  import train_speed

  flops = []
  for n_critic in (2, 3, 4):
    config = config_lib.validated(tiny_dcgan_config(n_critic=n_critic, loss="hinge"))
    config.data.shape = (28, 28, 1)
    exp = experiment.build(config, parallel.make_mesh(1))
    batch = exp.shard_batch(np.zeros((n_critic, config.train.batch_size, 28, 28, 1), np.uint8))
    key = experiment.run_keys(0)["train"]
    flops.append(train_speed.step_flops(exp, exp.init_state(), batch, key))
  per_update = flops[1] - flops[0]
  assert per_update > 0.25 * flops[0]  # a critic update's convolutions, not loop bookkeeping
  np.testing.assert_allclose(flops[2] - flops[1], per_update, rtol=1e-6)
