"""Population-based training against a grid search of the same trials and steps.

  python benchmarks/pbt_vs_grid.py [--experiment=pbt_grid] [--seeds=0,1,2] [--workdir=DIR]

For each sweep seed S, `gan_jax.sweep` runs the experiment's trials twice with --config.seed=S: as a
grid (every trial to the end, vectorised) and with --strategy=pbt (--config.pbt.seed=S). Both
spend the same trial-steps. Each sweep's best trial (sweep.csv is best first) is reported, and
the mean over seeds. Finished sweeps in the workdir are reused (the sweep command skips finished
trials). Prints a Markdown table, writes JSON.
"""

import argparse
import csv
import json
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def best_trial(workdir: pathlib.Path) -> dict:
  with open(workdir / "sweep.csv") as f:
    best = next(csv.DictReader(f))
  return {
    "trial": best["trial"],
    "modes": float(best["eval/modes"]),
    "high_quality_percent": float(best["eval/high_quality_percent"]),
  }


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--experiment", default="pbt_grid")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--workdir", default="runs/pbt_vs_grid")
  parser.add_argument("--json", default="benchmarks/pbt_vs_grid.json")
  args = parser.parse_args()
  config = ROOT / "experiments" / f"{args.experiment}.py"
  results = {"grid": {}, "pbt": {}}
  for seed in map(int, args.seeds.split(",")):
    for strategy in results:
      workdir = pathlib.Path(args.workdir) / f"{strategy}_s{seed}"
      command = [sys.executable, "-m", "gan_jax.sweep", f"--config={config}"]
      command += [f"--workdir={workdir}", "--vectorize=true", f"--config.seed={seed}"]
      if strategy == "pbt":
        command += ["--strategy=pbt", f"--config.pbt.seed={seed}"]
      subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
      results[strategy][seed] = best_trial(workdir)
  print(
    f"| {args.experiment}: best trial | "
    + " | ".join(f"seed {s}" for s in results["grid"])
    + " | mean |"
  )
  print("|---|" + "---|" * (len(results["grid"]) + 1))
  for strategy, by_seed in results.items():
    for metric in ("modes", "high_quality_percent"):
      values = [r[metric] for r in by_seed.values()]
      cells = [f"{v:.4g}" for v in values] + [f"{np.mean(values):.4g}"]
      print(f"| {strategy} {metric} | " + " | ".join(cells) + " |")
  with open(args.json, "w") as f:
    json.dump({"experiment": args.experiment, "results": results}, f, indent=2)


if __name__ == "__main__":
  main()
