"""Training speed of every experiment, beside PyTorch running the same DCGANs on the same machine.

  python benchmarks/train_speed.py [--experiments=dcgan,dcgan@2,dcgan64] [--repeats=5]
                                   [--seconds=3] [--json=benchmarks/train_speed.json]

NAME@N runs experiments/NAME.py with --config.parallel.cpu_devices=N (the host's cores split into N
XLA devices, the batch split over them); NAME+FIELD=VALUE sets a config field, e.g.
toy_ring+unroll_steps=5 or toy_ring+pac=4 (the cost of Unrolled GAN's and PacGAN's steps).

Each experiment runs in its own process (so peak memory is its own): the real train step of its
config, fed by the real input pipeline (`data.from_array` + `data.prefetch` over in-memory uint8
images of the dataset's shape, or the toy sampler), one iteration = all D updates + the G update.
Reported: steady-state iterations/s (median of `--repeats` timed blocks of about `--seconds` each,
min-max spread; compile and warm-up excluded), the step's compile time, peak resident memory,
GFLOP/s (XLA's FLOP count of the step times its rate) against the machine's matmul rate, and the
pipeline's own images/s. Where torch is importable the DCGAN and SNGAN experiments also time their
PyTorch reference (`torch_dcgan.py`, `torch_sngan.py`)
(in a process of its own, with PyTorch's stock settings), alternating JAX and PyTorch blocks so
that machine noise hits both; JAX/PyTorch is the median (and spread) of each JAX block's rate over
the PyTorch block that follows it. Prints a Markdown table; writes the same as JSON, with every
block's rate.
"""

import argparse
import ast
import functools
import importlib.util
import json
import math
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time
from unittest import mock

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_EXPERIMENTS = (
  "dcgan,dcgan@2,dcgan64,dcgan64@2,gan_minimax,wgan,wgan_gp,toy_ring,toy_grid,"
  "sngan_cifar10,cgan_pd_cifar10"
)
# The PyTorch script of the same networks, loss and optimiser: pytorch/examples' DCGAN loop, and
# mimicry's SNGAN32 (with the projection discriminator for the conditional GAN).
TORCH_REFERENCE = {
  "dcgan": "torch_dcgan.py",
  "dcgan64": "torch_dcgan.py",
  "sngan_cifar10": "torch_sngan.py",
  "cgan_pd_cifar10": "torch_sngan.py",
}


def _config(name):
  from gan_jax.config import experiment_module

  config = experiment_module(ROOT / "experiments" / f"{name}.py").get_config()
  # The shape its data has (MNIST 28x28x1 unless resized; the .npz is CIFAR-10), without loading it.
  if config.data.source == "toy":
    config.data.shape = (2,)
  else:
    cifar = config.data.source == "npz"
    size = config.data.image_size or (32 if cifar else 28)
    config.data.shape = (size, size, 3 if cifar else 1)
  return config


def _median_spread(values):
  return {
    "median": statistics.median(values),
    "min": min(values),
    "max": max(values),
    "blocks": list(values),
  }


def _timed_blocks(run_block, seconds_per_iteration, seconds, repeats, other=None):
  """Rates (iterations/s) of `repeats` blocks; `other`'s blocks interleaved when given."""
  n = max(2, math.ceil(seconds / seconds_per_iteration))
  rates, other_rates = [], []
  for _ in range(repeats):
    tic = time.perf_counter()
    run_block(n)
    rates.append(n / (time.perf_counter() - tic))
    if other:
      other_rates.append(other())
  return rates, other_rates


def _unrolled_scans():
  """lax.scan with its loop unrolled, while a step is traced: XLA's cost analysis counts a loop
  body once, so the n_critic critic updates are counted as straight-line code."""
  from jax import lax

  return mock.patch.object(lax, "scan", functools.partial(lax.scan, unroll=True))


def step_flops(exp, state, batch, key) -> float:
  """XLA's FLOP count of one whole train step of `exp` at the global batch.

  Counted on one CPU device, whatever the step runs on: XLA:GPU leaves cuDNN's convolutions out of
  its count, and the same program on one device does the whole batch's work.
  """
  import jax

  from gan_jax import experiment, parallel

  cpu_mesh = parallel.make_mesh(1, backend="cpu")
  shapes = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(
      x.shape, x.dtype, sharding=jax.NamedSharding(cpu_mesh, getattr(x.sharding, "spec", jax.P()))
    ),
    (state, batch, key),
  )
  with _unrolled_scans():
    cost = experiment.build(exp.config, cpu_mesh).step.lower(*shapes).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0)) if cost else 0.0


def worker(setting, repeats, seconds):
  """Measure one experiment (NAME[+FIELD=VALUE...][@CPU_DEVICES]); returns its row as a dict."""
  from gan_jax import cpu, data, experiment, parallel

  name, _, cpu_devices = setting.partition("@")
  name, *overrides = name.split("+")
  config = _config(name)
  for override in overrides:
    field, _, value = override.partition("=")
    *parents, leaf = field.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf] = ast.literal_eval(value)
  config.parallel.cpu_devices = int(cpu_devices or 0)
  cpu.configure(config.parallel.cpu_devices, config.parallel.cpu_async_dispatch)
  import jax
  import numpy as np

  shape, batch = tuple(config.data.shape), data.samples_per_batch(config)
  exp = experiment.build(config, parallel.make_mesh(config.parallel.num_devices))
  state, key = exp.init_state(), experiment.run_keys(config.seed)["train"]
  if config.data.source == "toy":
    dataset = data.create(config, 0, batch)
  else:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10_000, *shape), dtype=np.uint8)
    labels = rng.integers(0, config.model.num_classes, 10_000) if config.model.num_classes else None
    dataset = data.create(config, 0, batch, data.Examples(images, labels))
  stream = data.prefetch(dataset, 0, 10**9)
  next_batch = lambda: exp.shard_batch(next(stream))

  tic = time.perf_counter()
  compiled = exp.step.lower(state, next_batch(), key).compile()
  compile_s = time.perf_counter() - tic

  def run_block(n):
    nonlocal state
    for _ in range(n):
      state, metrics = compiled(state, next_batch(), key)
    jax.block_until_ready(metrics)

  run_block(2)  # warm-up
  tic = time.perf_counter()
  run_block(2)
  per_iteration = (time.perf_counter() - tic) / 2

  tic, n = time.perf_counter(), 0
  pipeline = data.prefetch(dataset, 0, 10**9)
  while time.perf_counter() - tic < 1.0:
    jax.block_until_ready(exp.shard_batch(next(pipeline)))
    n += 1
  pipeline_images = n * config.n_critic * batch / (time.perf_counter() - tic)

  run_block(max(2, math.ceil(seconds / per_iteration)))  # a first full block, before torch
  peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

  other, torch_server = None, None
  if name in TORCH_REFERENCE and importlib.util.find_spec("torch"):
    # PyTorch runs in a process of its own: stock allocator settings (this one's are tuned by
    # cpu.reuse_freed_memory), its own peak memory, its blocks still alternating.
    step_args = {
      "image_shape": list(shape),
      "batch_size": batch,
      "nz": config.model.nz,
      "ngf": config.model.ngf,
      "ndf": config.model.ndf,
    }
    if config.model.name == "resnet":
      step_args.update(n_critic=config.n_critic, num_classes=config.model.num_classes)
    torch_server = subprocess.Popen(
      [
        sys.executable,
        str(ROOT / "benchmarks" / TORCH_REFERENCE[name]),
        json.dumps(step_args),
        str(seconds),
      ],
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      text=True,
      cwd=ROOT,
    )
    if torch_server.stdout.readline().strip() != "ready":
      raise RuntimeError(f"{TORCH_REFERENCE[name]} failed to start (exit {torch_server.wait()})")

    def other():
      torch_server.stdin.write("run\n")
      torch_server.stdin.flush()
      return float(torch_server.stdout.readline())

  rates, torch_rates = _timed_blocks(run_block, per_iteration, seconds, repeats, other)
  if torch_server:
    torch_server.stdin.close()
    torch_server.wait()
  flops = step_flops(exp, state, next_batch(), key)
  row = {
    "experiment": setting,
    "shape": list(shape),
    "batch": batch,
    "n_critic": config.n_critic,
    "loss": config.loss,
    "model": config.model.name,
    "devices": exp.mesh.size,
    "it_per_s": _median_spread(rates),
    "compile_s": compile_s,
    "peak_rss_mb": peak_rss_mb,
    "gflop_per_it": flops / 1e9,
    "gflop_per_s": flops / 1e9 * statistics.median(rates),
    "pipeline_images_per_s": pipeline_images,
    "step_images_per_s": statistics.median(rates) * batch * config.n_critic,
  }
  if torch_rates:
    row["torch_it_per_s"] = _median_spread(torch_rates)
    # Each JAX block is paired with the PyTorch block run right after it, so that slow drifts of
    # the machine's speed cancel in the ratio.
    row["ratio"] = _median_spread([a / b for a, b in zip(rates, torch_rates)])
  return row


def _best_seconds(fn, repeats=10):
  fn()  # warm-up
  times = []
  for _ in range(repeats):
    tic = time.perf_counter()
    fn()
    times.append(time.perf_counter() - tic)
  return min(times)


def jax_matmul_gflops(n=2048, dtype="float32"):
  """GFLOP/s of JAX's n^3 matmul on the default device (the best of 10)."""
  import jax

  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  matmul = jax.jit(lambda x: x @ x)
  return 2 * n**3 / _best_seconds(lambda: matmul(a).block_until_ready()) / 1e9


def matmul_rate():
  """GFLOP/s of a 2048^3 float32 matmul, the best of JAX and (if installed) PyTorch."""
  n = 2048
  rates = {"jax": jax_matmul_gflops(n)}
  if importlib.util.find_spec("torch"):
    import torch

    t = torch.randn(n, n)
    rates["torch"] = 2 * n**3 / _best_seconds(lambda: t @ t) / 1e9
  return rates


def _versions():
  import jax

  from gan_jax import cpu

  out = {
    "python": platform.python_version(),
    "machine": platform.machine(),
    "cpu": cpu.name(),
    "cores": os.cpu_count(),
  }
  out["jax"] = jax.__version__
  out["platform"] = f"{jax.devices()[0].platform} x{jax.device_count()}"
  if importlib.util.find_spec("torch"):
    import torch

    out["torch"] = torch.__version__
  return out


def _row_markdown(r, peak_gflops):
  it = r["it_per_s"]
  cells = [
    r["experiment"],
    "x".join(map(str, r["shape"])),
    str(r["batch"]),
    str(r["devices"]),
    f"{it['median']:.3g} ({it['min']:.3g}-{it['max']:.3g})",
  ]
  if "torch_it_per_s" in r:
    t = r["torch_it_per_s"]
    ratio = r["ratio"]
    cells += [
      f"{t['median']:.3g} ({t['min']:.3g}-{t['max']:.3g})",
      f"**{ratio['median']:.2f}x** ({ratio['min']:.2f}-{ratio['max']:.2f})",
    ]
  else:
    cells += ["-", "-"]
  cells += [
    f"{r['compile_s']:.1f}",
    f"{r['peak_rss_mb']:.0f}",
    f"{r['gflop_per_s']:.1f} ({100 * r['gflop_per_s'] / peak_gflops:.0f}%)",
    f"{r['pipeline_images_per_s']:.3g} / {r['step_images_per_s']:.3g}",
  ]
  return "| " + " | ".join(cells) + " |"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--experiments", default=DEFAULT_EXPERIMENTS)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed block")
  parser.add_argument("--json", default="benchmarks/train_speed.json")
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.worker == "matmul":
    print(json.dumps(matmul_rate()))
    return
  if args.worker:
    print(json.dumps(worker(args.worker, args.repeats, args.seconds)))
    return

  def run_worker(name):
    cmd = [
      sys.executable,
      __file__,
      f"--worker={name}",
      f"--repeats={args.repeats}",
      f"--seconds={args.seconds}",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])

  matmul = run_worker("matmul")
  peak = max(matmul.values())
  rows = [run_worker(name) for name in args.experiments.split(",")]
  env = _versions()
  print(
    f"{env['cpu']}, {env['cores']} cores, {env['platform']}; jax {env['jax']}, "
    f"torch {env.get('torch', 'not installed')}; matmul 2048^3 f32: "
    + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in matmul.items())
    + "\n"
  )
  print(
    "| experiment | shape | batch | devices | JAX it/s (median, min-max) | PyTorch it/s "
    "| JAX/PyTorch (median of paired blocks, min-max) "
    "| compile s | peak RSS MB | GFLOP/s (% of matmul) | pipeline / step images/s |"
  )
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(_row_markdown(r, peak))
  with open(ROOT / args.json, "w") as f:
    json.dump(
      {
        "date": time.strftime("%Y-%m-%d"),
        "environment": env,
        "matmul_gflop_per_s": matmul,
        "repeats": args.repeats,
        "rows": rows,
      },
      f,
      indent=2,
    )


if __name__ == "__main__":
  main()
