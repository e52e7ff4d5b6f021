"""Trials per second of K small trials trained as one vmapped program versus one after another.

  python benchmarks/sweep_throughput.py [--trials=8] [--experiment=toy_ring|dcgan] [--steps=50]

Both sides run the same train step on the same devices; compile time is excluded, the median of
several timed repetitions is reported with the spread. Prints a Markdown table, writes JSON.
"""

import argparse
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data, experiment, parallel, trials

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _experiment(name, overrides):
  base = config_lib.experiment_module(ROOT / "experiments" / f"{name}.py").get_config()
  return trials.trial_config(base, overrides)


def _timed(run, steps, repeats):
  run(1)  # compile and warm up
  times = []
  for _ in range(repeats):
    tic = time.perf_counter()
    run(steps)
    times.append(time.perf_counter() - tic)
  return times


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--trials", type=int, default=8)
  parser.add_argument("--experiment", default="toy_ring")
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", default="benchmarks/sweep_throughput.json")
  args = parser.parse_args()

  small = {
    "toy_ring": {"model.g_hidden": (128, 128), "model.d_hidden": (128, 128)},
    "dcgan": {"model.ngf": 16, "model.ndf": 16, "train.batch_size": 32},
  }[args.experiment]
  base = _experiment(args.experiment, small)
  configs = [
    trials.trial_config(base, {"optimizer.d.lr": 1e-4 * (k + 1), "seed": k})
    for k in range(args.trials)
  ]
  images = np.random.default_rng(0).integers(0, 256, (1024, 28, 28, 1), dtype=np.uint8)
  datasets = [data.create(c, 0, c.train.batch_size, images) for c in configs]
  for c in configs:
    c.data.shape = datasets[0].shape
  batches = [d.batch(0) for d in datasets]
  keys = [experiment.run_keys(c.seed)["train"] for c in configs]

  # one after another: one program, run for each trial in turn
  exp = experiment.build(configs[0], parallel.make_mesh())
  states = [exp.init_state(c) for c in configs]
  serial_batches = [exp.shard_batch(b) for b in batches]

  def serial(n):
    for k in range(len(configs)):
      for _ in range(n):
        states[k], m = exp.step(states[k], serial_batches[k], keys[k])
      jax.block_until_ready(m)

  # together: the stacked states, the step vmapped
  stacked_exp = experiment.build(configs[0], parallel.make_trial_mesh(len(configs)))
  sharding = parallel.state_sharding(stacked_exp.mesh)
  stacked = jax.device_put(
    jax.tree.map(lambda *x: jnp.stack(x), *[stacked_exp.init_state(c) for c in configs]), sharding
  )
  stacked_keys = jax.device_put(jnp.stack(keys), sharding)
  stacked_batch = stacked_exp.shard_batch(np.stack(batches))
  box = [stacked]

  def vectorised(n):
    for _ in range(n):
      box[0], m = stacked_exp.step(box[0], stacked_batch, stacked_keys)
    jax.block_until_ready(m)

  results = {}
  for name, run in (("serial", serial), ("vectorised", vectorised)):
    times = _timed(run, args.steps, args.repeats)
    rates = [args.trials * args.steps / t for t in times]
    results[name] = {
      "trial_steps_per_sec": statistics.median(rates),
      "min": min(rates),
      "max": max(rates),
    }
  speedup = results["vectorised"]["trial_steps_per_sec"] / results["serial"]["trial_steps_per_sec"]
  device = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
  print(
    f"| {args.trials} trials of {args.experiment} ({device}) | trial-steps/s (median, min-max) |"
  )
  print("|---|---|")
  for name, r in results.items():
    print(f"| {name} | {r['trial_steps_per_sec']:.1f} ({r['min']:.1f}-{r['max']:.1f}) |")
  print(f"| speed-up | {speedup:.2f}x |")
  with open(args.json, "w") as f:
    json.dump(
      {
        "experiment": args.experiment,
        "trials": args.trials,
        "device": device,
        "results": results,
        "speedup": speedup,
      },
      f,
      indent=2,
    )


if __name__ == "__main__":
  main()
