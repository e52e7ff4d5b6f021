"""An image experiment on an accelerator (dcgan64, sngan_cifar10, cgan_pd_cifar10, ...):
iterations/s at batch 512 in float32 and bfloat16, and the share of the chip's measured matmul rate
that the train step achieves.

  python benchmarks/accelerator.py [--batch=512] [--seconds=10] [--json=benchmarks/accelerator.json]
                                   [--layers=gan_jax|lax] [--experiment=dcgan64]

--layers=lax times the same step with plain `lax.conv_general_dilated` / `lax.conv_transpose` and
autodiff in place of gan_jax's Conv / ConvTranspose ops, to check that those still pay on a chip.
Runs anywhere (on a CPU with --batch=8 it is a smoke test); the numbers mean something on a GPU/TPU.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

import jax
import numpy as np
from jax import lax

from gan_jax import experiment, parallel
from gan_jax.models import layers

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from train_speed import _config, _timed_blocks, jax_matmul_gflops, step_flops  # noqa: E402


def use_lax_layers():
  """Conv / ConvTranspose as plain lax convolutions differentiated by autodiff, in this process."""

  def conv_transpose(x, w, stride, padding):
    k = w.shape[0]
    return lax.conv_transpose(
      x,
      w,
      (stride, stride),
      [(k - 1 - padding,) * 2] * 2,
      dimension_numbers=layers._DIMS,
      transpose_kernel=True,
    )

  # The modules look these up at call time; `_shrink` is the plain strided lax conv.
  layers.conv, layers.conv_transpose = layers._shrink, conv_transpose


def step_rate(name, dtype, batch, seconds, repeats=5):
  """(iterations/s samples, TFLOP per iteration) of experiments/`name`.py."""
  config = _config(name)
  config.train.batch_size = batch
  config.model.dtype = dtype
  exp = experiment.build(config, parallel.make_mesh())
  state, key = exp.init_state(), experiment.run_keys(0)["train"]
  images = np.random.default_rng(0).integers(
    0, 256, (config.n_critic, batch, *config.data.shape), dtype=np.uint8
  )
  if config.model.num_classes:
    labels = np.arange(config.n_critic * batch).reshape(config.n_critic, batch)
    images = (images, labels % config.model.num_classes)
  batch_array = exp.shard_batch(images)
  compiled = exp.step.lower(state, batch_array, key).compile()

  def run_block(n):
    nonlocal state
    for _ in range(n):
      state, metrics = compiled(state, batch_array, key)
    jax.block_until_ready(metrics)

  run_block(2)  # warm-up
  tic = time.perf_counter()
  run_block(1)
  rates, _ = _timed_blocks(run_block, time.perf_counter() - tic, seconds, repeats)
  return rates, step_flops(exp, state, batch_array, key) / 1e12


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=512)
  parser.add_argument("--seconds", type=float, default=10.0, help="length of one timed block")
  parser.add_argument("--repeats", type=int, default=5, help="timed blocks per dtype")
  parser.add_argument("--matmul_size", type=int, default=8192)
  parser.add_argument("--json", default="benchmarks/accelerator.json")
  parser.add_argument("--layers", choices=("gan_jax", "lax"), default="gan_jax")
  parser.add_argument("--experiment", default="dcgan64", help="an image experiment in experiments/")
  args = parser.parse_args()
  if args.layers == "lax":
    use_lax_layers()

  device = jax.devices()[0]
  name = f"{device.device_kind} ({device.platform}) x{jax.device_count()}"
  rows = []
  print(
    f"{name}; jax {jax.__version__}; {args.experiment}, batch {args.batch}, {args.layers} layers\n"
  )
  print("| dtype | it/s (median, min-max) | images/s | TFLOP/s | matmul TFLOP/s | share |")
  print("|---|---|---|---|---|---|")
  for dtype in ("float32", "bfloat16"):
    rates, tflop = step_rate(args.experiment, dtype, args.batch, args.seconds, args.repeats)
    peak = jax_matmul_gflops(args.matmul_size, dtype) / 1e3 * jax.device_count()  # TFLOP/s
    it = statistics.median(rates)
    rows.append(
      {
        "dtype": dtype,
        "it_per_s": it,
        "min": min(rates),
        "max": max(rates),
        "tflop_per_it": tflop,
        "tflop_per_s": tflop * it,
        "matmul_tflop_per_s": peak,
      }
    )
    print(
      f"| {dtype} | {it:.3g} ({min(rates):.3g}-{max(rates):.3g}) | {it * args.batch:.4g} "
      f"| {tflop * it:.3g} | {peak:.3g} | {100 * tflop * it / peak:.0f}% |"
    )
  with open(args.json, "w") as f:
    json.dump(
      {
        "device": name,
        "jax": jax.__version__,
        "experiment": args.experiment,
        "batch": args.batch,
        "layers": args.layers,
        "rows": rows,
      },
      f,
      indent=2,
    )


if __name__ == "__main__":
  main()
