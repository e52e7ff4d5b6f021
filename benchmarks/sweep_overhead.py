"""What a sweep costs beyond its training steps: compiles, run directories, evaluations, pictures.

  python benchmarks/sweep_overhead.py [--experiment=toy_ring] [--steps=300] [--vectorize=auto]

Times `python -m gan_jax.sweep` on the experiment's own get_sweep() trials (wall clock, from the
command's start to its exit), then the same trials' steps alone: every trial's train step on its
own batches, in one process, compiled beforehand; --repeats pairs of the two. Prints each pair's
ratio and their median, writes JSON. Each command starts with an empty compilation cache, as a
machine's first run does (the commands keep compiled programs on disk: gan_jax.compile_cache);
--warm_cache times it with a cache that an untimed first run filled, as any later run of a sweep
finds it (resumed, extended, repeated).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import jax

from gan_jax import config as config_lib
from gan_jax import cpu, data, experiment, hyper, parallel, trials

ROOT = pathlib.Path(__file__).resolve().parents[1]


def steps_alone(config_file: pathlib.Path, num_steps: int) -> float:
  """Seconds of the sweep's trials' steps, one trial after another on one compiled step."""
  module = config_lib.experiment_module(config_file)
  base = module.get_config()
  base.train.num_steps = num_steps
  cpu.configure(base.parallel.cpu_devices, base.parallel.cpu_async_dispatch)
  configs = [config_lib.validated(trials.trial_config(base, t)) for t in module.get_sweep(hyper)]
  examples = None if base.data.source == "toy" else data.load_for(configs[0])
  datasets = [data.create(c, 0, data.samples_per_batch(c), examples) for c in configs]
  for c in configs:
    c.data.shape = datasets[0].shape
  exp = experiment.build(configs[0], parallel.make_mesh(configs[0].parallel.num_devices))
  seconds = 0.0
  for k, (c, d) in enumerate(zip(configs, datasets)):
    state, key = exp.init_state(c), experiment.run_keys(c.seed)["train"]
    batches = [exp.shard_batch(d.batch(step)) for step in range(num_steps)]
    if k == 0:  # compile
      jax.block_until_ready(exp.step(exp.init_state(c), batches[0], key))
    tic = time.perf_counter()
    for batch in batches:
      state, metrics = exp.step(state, batch, key)
    jax.block_until_ready(metrics)
    seconds += time.perf_counter() - tic
  return seconds


def sweep_command(config_file: pathlib.Path, args, env: dict) -> tuple[float, int]:
  """Seconds of the sweep command from start to exit, and its number of trials."""
  with tempfile.TemporaryDirectory() as workdir:
    env = {"JAX_COMPILATION_CACHE_DIR": f"{workdir}/jit", **env}  # empty unless env has one
    command = [sys.executable, "-m", "gan_jax.sweep", f"--config={config_file}"]
    command += [f"--workdir={workdir}/sweep", f"--config.train.num_steps={args.steps}"]
    command += [f"--vectorize={args.vectorize}"]
    tic = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - tic
    with open(f"{workdir}/sweep/sweep.json") as f:
      return seconds, len(json.load(f)["trials"])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--experiment", default="toy_ring")
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--vectorize", default="auto")
  parser.add_argument("--repeats", type=int, default=3, help="pairs of (sweep, steps alone)")
  parser.add_argument("--warm_cache", action="store_true", help="a filled compilation cache")
  parser.add_argument("--json", default="benchmarks/sweep_overhead.json")
  args = parser.parse_args()
  config_file = ROOT / "experiments" / f"{args.experiment}.py"
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  if args.warm_cache:
    cache = tempfile.TemporaryDirectory(prefix="sweep_overhead_jit_")  # removed at exit
    env["JAX_COMPILATION_CACHE_DIR"] = cache.name
    sweep_command(config_file, args, env)  # untimed: fills the cache
  # Pairs, each sweep beside steps timed right after it: this machine's speed drifts by 10-20%
  # over minutes, more than the overhead being measured.
  pairs = []
  for _ in range(args.repeats):
    sweep_seconds, num_trials = sweep_command(config_file, args, env)
    pairs.append((sweep_seconds, steps_alone(config_file, args.steps)))
  ratios = sorted(s / a for s, a in pairs)
  result = {
    "experiment": args.experiment,
    "trials": num_trials,
    "steps": args.steps,
    "vectorize": args.vectorize,
    "compilation_cache": "warm" if args.warm_cache else "none",
    "device": f"{jax.devices()[0].device_kind} x{jax.device_count()}",
    "pairs": [{"sweep_seconds": s, "steps_alone_seconds": a} for s, a in pairs],
    "ratio_median": statistics.median(ratios),
    "ratio_min_max": [ratios[0], ratios[-1]],
  }
  cached = ", compilation cache warm" if args.warm_cache else ""
  print(f"{num_trials} trials x {args.steps} steps of {args.experiment}{cached}:")
  for s, a in pairs:
    print(f"  the sweep command {s:.1f} s, its steps alone {a:.1f} s, ratio {s / a:.2f}")
  print(f"ratio: median {result['ratio_median']:.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
  with open(args.json, "w") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
