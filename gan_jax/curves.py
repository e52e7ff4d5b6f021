"""Loss curves: compare two runs, overlay several, and record or reproduce reference curves.

  python -m gan_jax.curves compare RUN_A RUN_B [--metrics=d_loss,g_loss] [--rtol=1e-5 --atol=1e-6]
  python -m gan_jax.curves plot RUN... [--out=curves.png]
  python -m gan_jax.curves record experiments/reference/NAME.json   (runs the file's command)
  python -m gan_jax.curves reproduce experiments/reference/NAME.json [--config.data.manual_dir=...]

A RUN is a run directory or a metrics.jsonl file. `compare` exits 1 when a metric differs by more
than atol + rtol * |B| at any step, or the runs log different steps; --rtol=0 --atol=0 asks for
bit-for-bit equality.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags, logging

from gan_jax.cli import fail, parse_flags

FLAGS = flags.FLAGS


# Set by tests and by users for other purposes; a reference run is made and reproduced without them.
_ENV_LEFT_OUT = ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS", "JAX_ENABLE_X64")


def load(run: str) -> list[dict]:
  from gan_jax.reporting import read_metrics
  path = os.path.join(run, "metrics.jsonl") if os.path.isdir(run) else run
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{run}: neither a run directory nor a metrics.jsonl file")
  return read_metrics(path)


def compare(a: list[dict], b: list[dict], metrics, rtol: float, atol: float) -> tuple[bool, list[str]]:
  """(agree, report lines): per metric the largest deviation and where it happens."""
  steps_a, steps_b = [r["step"] for r in a], [r["step"] for r in b]
  if steps_a != steps_b:
    only = sorted(set(steps_a) ^ set(steps_b))
    return False, [f"the runs log different steps ({len(steps_a)} vs {len(steps_b)} records; "
                   f"first differing step {only[0] if only else '?'})"]
  agree, lines = True, []
  for key in metrics:
    x = np.array([r.get(key, np.nan) for r in a], np.float64)
    y = np.array([r.get(key, np.nan) for r in b], np.float64)
    both_nan = np.isnan(x) & np.isnan(y)
    deviation = np.where(both_nan, 0.0, np.abs(x - y))
    deviation = np.where(np.isnan(deviation), np.inf, deviation)
    worst = int(np.argmax(deviation))
    bad = deviation > atol + rtol * np.abs(y)
    ok = not bad.any()
    agree &= ok
    relative = deviation[worst] / max(abs(y[worst]), 1e-30)
    where = f"at step {steps_a[worst]} ({x[worst]:.9g} vs {y[worst]:.9g})"
    lines.append(f"{key}: {'ok' if ok else 'DIFFERENT'}  max |a-b| = {deviation[worst]:.3g} "
                 f"(relative {relative:.3g}) {where}; {int(bad.sum())} of {len(x)} steps beyond "
                 "tolerance")
  return agree, lines


def _clean_env() -> dict:
  return {k: v for k, v in os.environ.items() if k not in _ENV_LEFT_OUT}


def run_reference(path: str, reference: dict, workdir: str, extra_args=()) -> None:
  """Train the reference's experiment (its path is relative to the reference file) in `workdir`."""
  config = os.path.join(os.path.dirname(os.path.abspath(path)), reference["config"])
  command = [sys.executable, "-m", "gan_jax.main", f"--config={config}", f"--workdir={workdir}",
             *reference["overrides"], *extra_args]
  result = subprocess.run(command, env=_clean_env(), capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip().splitlines()[-1:]}")


def _versions() -> dict:
  import flax
  import jax
  import jaxlib
  import optax
  return {"python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "flax": flax.__version__, "optax": optax.__version__}


def record(path: str, extra_args=()) -> None:
  """Run the reference file's command and store its curve and where it was made."""
  with open(path) as f:
    reference = json.load(f)
  with tempfile.TemporaryDirectory() as workdir:
    run_reference(path, reference, workdir, extra_args)
    curve = load(workdir)
  import jax
  reference.update(platform=jax.default_backend(), device_count=1, machine=platform.machine(),
                   cpu=_cpu_name(), versions=_versions(), metrics=curve)
  with open(path, "w") as f:
    json.dump(reference, f, indent=1)


def reproduce(path: str, metrics, rtol: float, atol: float, extra_args=()) -> tuple[bool, list[str]]:
  with open(path) as f:
    reference = json.load(f)
  with tempfile.TemporaryDirectory() as workdir:
    run_reference(path, reference, workdir, extra_args)
    return compare(load(workdir), reference["metrics"], metrics, rtol, atol)


def _cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor()


def _define_flags() -> None:
  """Only when run as a program: importing this module for its functions defines no flags."""
  flags.DEFINE_list("metrics", ["d_loss", "g_loss"], "metrics to compare")
  flags.DEFINE_float("rtol", 1e-5, "relative tolerance")
  flags.DEFINE_float("atol", 1e-6, "absolute tolerance")
  flags.DEFINE_string("out", "curves.png", "picture written by `plot`")


def main(argv):
  logging.set_verbosity(logging.ERROR)
  command, args = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
  config_args = [a for a in args if a.startswith("--config.")]
  args = [a for a in args if not a.startswith("--config.")]
  try:
    if command == "compare" and len(args) == 2:
      agree, lines = compare(load(args[0]), load(args[1]), FLAGS.metrics, FLAGS.rtol, FLAGS.atol)
    elif command == "reproduce" and len(args) == 1:
      agree, lines = reproduce(args[0], FLAGS.metrics, FLAGS.rtol, FLAGS.atol, config_args)
    elif command == "record" and len(args) == 1:
      record(args[0], config_args)
      print(f"recorded {args[0]}")
      return
    elif command == "plot" and args:
      from gan_jax import plotting
      plotting.save_overlay({run: load(run) for run in args}, FLAGS.out, FLAGS.metrics)
      print(f"wrote {FLAGS.out}")
      return
    else:
      fail("usage: curves compare RUN_A RUN_B | plot RUN... | record REF.json | reproduce REF.json")
  except (FileNotFoundError, RuntimeError) as e:
    fail(str(e))
  print("\n".join(lines))
  print("curves agree" if agree else f"curves DIFFER beyond rtol={FLAGS.rtol} atol={FLAGS.atol}")
  sys.exit(0 if agree else 1)


def _parse(argv: list[str]) -> list[str]:
  """Flags of this tool for absl; --config.* overrides pass through to the training command."""
  overrides = [a for a in argv[1:] if a.startswith("--config.")]
  return parse_flags([a for a in argv if not a.startswith("--config.")]) + overrides


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=_parse)
