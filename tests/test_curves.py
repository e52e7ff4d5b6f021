"""curves compare tells a reproduced run from a perturbed one; the short references reproduce."""

import json

import pytest

from gan_jax import cpu, reference

from conftest import ROOT, run_python

REFERENCES = sorted((ROOT / "experiments" / "reference").glob("*.json"))


def _records(values, steps=None):
  return [
    {"step": s, "d_loss": v, "g_loss": -v}
    for s, v in zip(steps or range(1, len(values) + 1), values)
  ]


def test_compare_reports_the_largest_deviation_and_its_step():
  a = _records([1.0, 2.0, 3.0, 4.0])
  assert reference.compare(a, _records([1.0, 2.0, 3.0, 4.0]), ["d_loss", "g_loss"], 0, 0)[0]
  agree, lines = reference.compare(a, _records([1.0, 2.0, 3.003, 4.0]), ["d_loss"], 1e-5, 0)
  assert not agree and "at step 3" in lines[0] and "1 of 4 steps" in lines[0]
  assert reference.compare(a, _records([1.0, 2.0, 3.003, 4.0]), ["d_loss"], 1e-2, 0)[0]
  assert not reference.compare(a, _records([1.0, 2.0, 3.0], [1, 2, 4]), ["d_loss"], 1, 1)[0]


def _write(path, records):
  path.write_text("".join(json.dumps(r) + "\n" for r in records))
  return str(path)


def test_compare_and_plot_commands(tmp_path):
  a = _write(tmp_path / "a.jsonl", _records([1.0, 2.0, 3.0]))
  b = _write(tmp_path / "b.jsonl", _records([1.0, 2.0, 3.0]))
  c = _write(tmp_path / "c.jsonl", _records([1.0, 2.5, 3.0]))
  run = lambda *args: run_python("-m", "gan_jax.curves", *args, timeout=300)
  assert run("compare", a, b, "--rtol=0", "--atol=0").returncode == 0
  different = run("compare", a, c, "--metrics=d_loss")
  assert different.returncode == 1 and "at step 2" in different.stdout
  assert run("plot", a, c, f"--out={tmp_path / 'both.png'}").returncode == 0
  assert (tmp_path / "both.png").stat().st_size > 0
  assert run("compare", a, str(tmp_path / "missing")).returncode == 2


def test_references_say_how_they_were_made():
  assert {"toy_ring", "toy_grid_wgan_gp", "dcgan_mnist", "wgan_gp_mnist"} <= {
    p.stem for p in REFERENCES
  }
  for path in REFERENCES:
    reference = json.loads(path.read_text())
    assert reference["metrics"] and reference["versions"]["jax"] and reference["platform"] == "cpu"
    assert reference["instruction_sets"].startswith(reference["machine"])


@pytest.mark.parametrize(
  "path",
  [p for p in REFERENCES if json.loads(p.read_text())["rerun_in_tests"]],
  ids=lambda p: p.stem,
)
def test_short_references_reproduce(path):
  """Bit for bit on a CPU with the recording's instruction sets; on another, the first logged step
  to its rounding (later steps drift apart: README, "What reproduce guarantees")."""
  same_cpu = json.loads(path.read_text())["instruction_sets"] == cpu.instruction_sets()
  tolerance = dict(rtol=0, atol=0) if same_cpu else dict(rtol=1e-3, atol=1e-4)
  agree, lines = reference.reproduce(str(path), ["d_loss", "g_loss"], **tolerance)
  assert agree, "\n".join(lines)


def test_reproduce_compares_the_whole_curve_only_on_the_recording_s_instruction_sets(tmp_path):
  path = tmp_path / "ref.json"
  tiny = ["--config.model.g_hidden=(16,)", "--config.model.d_hidden=(16,)", "--config.log_every=5"]
  steps = ["--config.train.num_steps=10", "--config.sample_every=10", "--config.eval_every=0"]
  made = dict(config=str(ROOT / "experiments" / "toy_ring.py"), overrides=tiny + steps)
  path.write_text(json.dumps(made))
  reference.record(str(path))
  recorded = json.loads(path.read_text())
  assert recorded["instruction_sets"] == cpu.instruction_sets()

  def reproduce(change):
    path.write_text(json.dumps(change(json.loads(json.dumps(recorded)))))
    return reference.reproduce(str(path), ["d_loss"], rtol=0, atol=0)

  def drifted(ref, at):
    ref["metrics"][at]["d_loss"] *= 1.001
    return ref

  def elsewhere(ref):
    return {**ref, "instruction_sets": "x86_64 sse4_2 avx avx2 fma"}

  assert not reproduce(lambda ref: drifted(ref, -1))[0]
  agree, lines = reproduce(lambda ref: elsewhere(drifted(ref, -1)))
  assert agree and lines[0].startswith("compared the first logged step only"), lines
  assert not reproduce(lambda ref: elsewhere(drifted(ref, 0)))[0]
