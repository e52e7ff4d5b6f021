"""Loss curves as evidence: compare two runs step by step, and record or reproduce the reference
curves in experiments/reference/ (each holds the command that made it, where and with what).
`python -m gan_jax.curves` is its command line."""

import json
import os
import platform
import subprocess
import sys
import tempfile

import flax
import jax
import jaxlib
import numpy as np
import optax

from gan_jax import cpu, reporting

# Set by tests and by users for other purposes; a reference run is made and reproduced without them.
_ENV_LEFT_OUT = ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS", "JAX_ENABLE_X64")


def load(run: str) -> list[dict]:
  path = os.path.join(run, "metrics.jsonl") if os.path.isdir(run) else run
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{run}: neither a run directory nor a metrics.jsonl file")
  return reporting.read_metrics(path)


def compare(
  a: list[dict], b: list[dict], metrics, rtol: float, atol: float
) -> tuple[bool, list[str]]:
  """(agree, report lines): per metric the largest deviation and where it happens."""
  steps_a, steps_b = [r["step"] for r in a], [r["step"] for r in b]
  if steps_a != steps_b:
    only = sorted(set(steps_a) ^ set(steps_b))
    return False, [
      f"the runs log different steps ({len(steps_a)} vs {len(steps_b)} records; "
      f"first differing step {only[0] if only else '?'})"
    ]
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
    lines.append(
      f"{key}: {'ok' if ok else 'DIFFERENT'}  max |a-b| = {deviation[worst]:.3g} "
      f"(relative {relative:.3g}) {where}; {int(bad.sum())} of {len(x)} steps beyond "
      "tolerance"
    )
  return agree, lines


def _clean_env() -> dict:
  return {k: v for k, v in os.environ.items() if k not in _ENV_LEFT_OUT}


def run_reference(path: str, reference: dict, workdir: str, extra_args=()) -> None:
  """Train the reference's experiment (its path is relative to the reference file) in `workdir`."""
  config = os.path.join(os.path.dirname(os.path.abspath(path)), reference["config"])
  command = [
    sys.executable,
    "-m",
    "gan_jax.main",
    f"--config={config}",
    f"--workdir={workdir}",
    *reference["overrides"],
    *extra_args,
  ]
  result = subprocess.run(command, env=_clean_env(), capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip().splitlines()[-1:]}")


def _versions() -> dict:
  return {
    "python": platform.python_version(),
    "jax": jax.__version__,
    "jaxlib": jaxlib.__version__,
    "flax": flax.__version__,
    "optax": optax.__version__,
  }


def record(path: str, extra_args=()) -> None:
  """Run the reference file's command and store its curve and where it was made."""
  with open(path) as f:
    reference = json.load(f)
  with tempfile.TemporaryDirectory() as workdir:
    run_reference(path, reference, workdir, extra_args)
    curve = load(workdir)
  reference.update(
    platform=jax.default_backend(),
    device_count=1,
    machine=platform.machine(),
    cpu=cpu.name(),
    instruction_sets=cpu.instruction_sets(),
    versions=_versions(),
    metrics=curve,
  )
  with open(path, "w") as f:
    json.dump(reference, f, indent=1)


def reproduce(
  path: str, metrics, rtol: float, atol: float, extra_args=()
) -> tuple[bool, list[str]]:
  """Rerun a reference and compare: the whole curve on a CPU with the recording's instruction
  sets, else only the first logged step, before rounding differences have grown through training
  (README, "What reproduce guarantees")."""
  with open(path) as f:
    reference = json.load(f)
  with tempfile.TemporaryDirectory() as workdir:
    run_reference(path, reference, workdir, extra_args)
    curve, recorded = load(workdir), reference["metrics"]
  here = cpu.instruction_sets()
  if reference.get("instruction_sets") == here:
    return compare(curve, recorded, metrics, rtol, atol)
  agree, lines = compare(curve[:1], recorded[:1], metrics, rtol, atol)
  note = (
    f"compared the first logged step only: recorded on {reference.get('instruction_sets', 'a CPU')}"
    f", this CPU has {here}"
  )
  return agree, [note, *lines]
