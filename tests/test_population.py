"""Population-based training and successive halving: what they copy, perturb and stop, and that a
sweep killed part-way and rerun writes the same sweep.csv as one never stopped."""

import json

import jax
import numpy as np
import pytest

from gan_jax import hyper, population, run_dir, trials
from gan_jax.train_step import read_number, with_number

from conftest import tiny_toy_config

SWEEP = hyper.zipit(
  hyper.sweep("optimizer.d.lr", [1e-4, 1e-3]), hyper.sweep("optimizer.g.lr", [2e-4, 2e-3])
)


def _config(**fields):
  return tiny_toy_config(
    **{"train.num_steps": 12, "log_every": 1, "checkpoint_every": 4, "sample_every": 12},
    **fields,
  )


def _interrupted_then_resumed(monkeypatch, target, name, calls_before_crash, run):
  """`run()` crashing (as a kill would) at the `calls_before_crash`+1-th call of target.name, then
  `run()` again."""
  original, calls = getattr(target, name), []

  def crashing(*args, **kwargs):
    calls.append(1)
    if len(calls) > calls_before_crash:
      raise KeyboardInterrupt
    return original(*args, **kwargs)

  with monkeypatch.context() as patch:
    patch.setattr(target, name, crashing)
    with pytest.raises(KeyboardInterrupt):
      run()
  return run()


def test_pbt_copies_the_top_trials_state_and_resumes_exactly(tmp_path, monkeypatch):
  config = _config(**{"pbt.interval": 4, "pbt.quantile": 0.5})
  whole, resumed = tmp_path / "whole", tmp_path / "resumed"
  trials.run_sweep(config, SWEEP, str(whole), vectorize=None, strategy="pbt")  # CPU: serial
  timing = json.loads((whole / "sweep.json").read_text())["timing"]
  assert {t["trials_in_program"] for t in timing.values()} == {2}  # yet one program
  lineage = population.read_lineage(str(whole))
  assert [e["step"] for e in lineage] == [4, 8]  # the worse of 2 trials, at steps 4 and 8
  for event in lineage[:1]:
    _, copy = run_dir.restore(str(whole / event["trial"]), event["step"])
    _, donor = run_dir.restore(str(whole / event["from"]), event["step"])
    for field in ("optimizer.d.lr", "optimizer.g.lr"):
      value, donor_value = float(read_number(copy, field)), float(read_number(donor, field))
      assert value == pytest.approx(event[field], rel=1e-5)
      resampled = value in {np.float32(t[field]) for t in SWEEP}
      assert (
        resampled
        or value / donor_value == pytest.approx(0.8)
        or value / donor_value == pytest.approx(1.2)
      )
      copy = with_number(copy, field, read_number(donor, field))
    # but for the perturbed numbers, the whole state: parameters, statistics, Adam's moments, EMA
    jax.tree.map(np.testing.assert_array_equal, copy, donor)
  # killed at the second exploit (step 8, after the checkpoint of step 4), then rerun
  run = lambda: trials.run_sweep(config, SWEEP, str(resumed), strategy="pbt")
  target = population.PopulationBasedTraining
  _interrupted_then_resumed(monkeypatch, target, "exploit_and_explore", 1, run)
  for name in ("sweep.csv", "lineage.jsonl", "summary.md", "trial_001/metrics.jsonl"):
    assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name
  record = json.loads((whole / "sweep.json").read_text())
  assert record["strategy"] == "pbt" and record["lineage"] == lineage
  assert (whole / "lineage.png").stat().st_size > 0


def test_halving_stops_the_worst_at_each_rung_and_resumes_exactly(tmp_path, monkeypatch):
  config = _config(**{"halving.min_steps": 6, "halving.eta": 2})
  whole, resumed = tmp_path / "whole", tmp_path / "resumed"
  rows = trials.run_sweep(config, SWEEP, str(whole), strategy="halving")
  record = json.loads((whole / "sweep.json").read_text())["halving"]
  assert record["rungs"] == [6, 12] and list(record["stopped"].values()) == [6]
  assert [r["step"] for r in rows] == [12, 6]  # the trial that went further first
  scores = {r["trial"]: population.evaluation_at(str(whole / r["trial"]), 6) for r in rows}
  best = min(scores, key=lambda n: (-scores[n]["modes"], -scores[n]["high_quality_percent"], n))
  assert rows[0]["trial"] == best  # the best at the rung went on
  # killed in the second rung's program (the survivor alone), then rerun
  run = lambda: trials.run_sweep(config, SWEEP, str(resumed), strategy="halving")
  _interrupted_then_resumed(monkeypatch, trials, "train_one_after_another", 0, run)
  for name in ("sweep.csv", "summary.md", f"{best}/metrics.jsonl"):
    assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name
