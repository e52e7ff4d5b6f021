"""Sweeps: the hyper helpers, vectorised trials equal to lone runs, grouping, resume, summary."""

import csv
import json
import os

import numpy as np
import pytest

from gan_jax import hyper, train, trials

from conftest import run_python, tiny_toy_config


def test_hyper_helpers():
  grid = hyper.product(hyper.sweep("a", [1, 2]), hyper.sweep("b", ["x", "y", "z"]))
  assert len(grid) == 6 and {"a": 2, "b": "z"} in grid
  assert hyper.zipit(hyper.sweep("a", [1, 2]), hyper.sweep("b", [3, 4])) == [
    {"a": 1, "b": 3},
    {"a": 2, "b": 4},
  ]
  assert hyper.chainit(hyper.sweep("a", [1]), hyper.sweep("b", [2])) == [{"a": 1}, {"b": 2}]
  draws = hyper.random_search(
    50,
    seed=0,
    optimizer__d__lr=hyper.log_uniform(1e-5, 1e-3),
    loss=hyper.choice(["hinge", "wasserstein"]),
  )
  lrs = [t["optimizer.d.lr"] for t in draws]
  assert len(draws) == 50 and min(lrs) >= 1e-5 and max(lrs) <= 1e-3
  assert {t["loss"] for t in draws} == {"hinge", "wasserstein"}
  assert draws == hyper.random_search(
    50,
    seed=0,
    optimizer__d__lr=hyper.log_uniform(1e-5, 1e-3),
    loss=hyper.choice(["hinge", "wasserstein"]),
  )


def _curve(path):
  with open(os.path.join(path, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_vectorised_trial_equals_the_trial_alone(tmp_path):
  # spectral norm: its power-iteration state is stacked per trial like the parameters
  base = tiny_toy_config(
    **{"train.num_steps": 10, "log_every": 1, "r1_gamma": 0.5, "model.d_spectral_norm": True}
  )
  sweep = [
    {"optimizer.d.lr": 1e-3, "seed": 0, "ema_decay": 0.9},
    {"optimizer.g.lr": 5e-4, "optimizer.g.b1": 0.0, "seed": 1, "r1_gamma": 2.0},
    {"optimizer.d.b2": 0.9, "seed": 2},
  ]
  trials.run_sweep(base, sweep, str(tmp_path / "sweep"))
  record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
  assert all(t["trials_in_program"] == 3 for t in record["timing"].values())  # one program
  curves = [_curve(tmp_path / "sweep" / f"trial_{k:03d}") for k in range(3)]
  assert curves[0] != curves[1]
  for k in (1, 2):
    train.train_and_evaluate(trials.trial_config(base, sweep[k]), str(tmp_path / f"alone{k}"))
    alone = _curve(tmp_path / f"alone{k}")
    assert [r["step"] for r in alone] == [r["step"] for r in curves[k]]
    for key in ("d_loss", "g_loss", "d_grad_norm", "r1"):
      np.testing.assert_allclose(
        [r[key] for r in curves[k]], [r[key] for r in alone], rtol=1e-5, atol=1e-6, err_msg=key
      )


def test_trials_that_change_the_program_run_apart():
  base = tiny_toy_config()
  sweep = [
    {"seed": 0},
    {"seed": 1, "optimizer.d.lr": 1e-3},
    {"loss": "hinge"},
    {"model.d_hidden": (8,)},
    {"clip_value": 0.1},
    {"clip_value": 0.2, "seed": 3},
  ]
  configs = [trials.trial_config(base, t) for t in sweep]
  assert sorted(map(sorted, trials.group_trials(configs, True, 16))) == [[0, 1], [2], [3], [4, 5]]
  assert trials.group_trials(configs, True, 1) == [[0], [1], [2], [3], [4], [5]]
  assert trials.group_trials(configs, False, 16) == [[i] for i in range(6)]
  with pytest.raises(Exception, match="unknown config field 'model.nope'"):
    trials.trial_config(base, {"model.nope": 1})


def test_sweep_resumes_and_skips_finished_trials(tmp_path, monkeypatch):
  sweep = [{"seed": 0}, {"seed": 1}]
  workdir = str(tmp_path / "sweep")
  trials.run_sweep(tiny_toy_config(**{"train.num_steps": 4}), sweep, workdir)
  rows = trials.run_sweep(tiny_toy_config(**{"train.num_steps": 8}), sweep, workdir)  # resumes
  assert [r["step"] for r in rows] == [8, 8]
  assert [r["step"] for r in _curve(os.path.join(workdir, "trial_001"))] == [2, 4, 6, 8]
  retrained = lambda *a, **k: pytest.fail("re-trained a finished trial")
  monkeypatch.setattr(trials, "train_trials", retrained)
  monkeypatch.setattr(train, "train_and_evaluate", retrained)
  rows = trials.run_sweep(tiny_toy_config(**{"train.num_steps": 8}), sweep, workdir)
  with open(os.path.join(workdir, "sweep.csv")) as f:
    table = list(csv.DictReader(f))
  assert [t["trial"] for t in table] == ["trial_000", "trial_001"] and table[1]["seed"] == "1"
  assert float(table[0]["steps_per_sec"]) > 0 and table[0]["g_loss"]
  with pytest.raises(Exception, match="another sweep"):
    trials.run_sweep(tiny_toy_config(), [{"seed": 5}], workdir)


def test_sweep_command_runs_twelve_trials_of_an_experiment(tmp_path):
  """experiments/toy_ring.py's own 12-trial sweep, shrunk, from one command."""
  workdir = tmp_path / "sweep"
  result = run_python(
    "-m",
    "gan_jax.sweep",
    "--config=experiments/toy_ring.py",
    f"--workdir={workdir}",
    "--vectorize=true",
    "--config.train.num_steps=6",
    "--config.log_every=3",
    "--config.model.g_hidden=(16,)",
    "--config.model.d_hidden=(16,)",
    "--config.train.batch_size=8",
    "--config.num_samples=16",
  )
  assert result.returncode == 0, result.stderr
  with open(workdir / "sweep.csv") as f:
    table = list(csv.DictReader(f))
  assert len(table) == 12 and all(row["step"] == "6" for row in table)
  assert {row["trials_in_program"] for row in table} == {"12"}
  assert (workdir / "sweep.png").stat().st_size > 0
  assert (workdir / "trial_011" / "samples" / "step_0000006.png").exists()


TABLE_EXPERIMENT = """
from gan_jax import tables
from gan_jax.config import toy_config

TABLE = tables.Table(
  "a tiny PacGAN table",
  "nowhere, Table 0",
  {"modes": "modes", "high_quality_percent": "high quality %"},
  (
    tables.Row("GAN", {"pac": 1}, {"modes": "6.3 ± 0.5"}),
    tables.Row("PacGAN2", {"pac": 2}, {}),
  ),
  seeds=(0, 1, 2),
)


def get_config():
  c = toy_config("ring8")
  c.model.g_hidden, c.model.d_hidden = (16,), (16,)
  c.train.batch_size, c.train.num_steps, c.num_samples, c.log_every = 8, 5, 16, 5
  return c


get_sweep = TABLE.sweep
"""


def test_table_command_summarises_each_row_over_its_seeds(tmp_path):
  """A table experiment's rows x seeds from one command: each row's seeds train as one program,
  are evaluated at their last step, and table.md puts their mean +- standard error beside the
  paper's numbers."""
  experiment = tmp_path / "table.py"
  experiment.write_text(TABLE_EXPERIMENT)
  workdir = tmp_path / "t"
  result = run_python(
    "-m", "gan_jax.sweep", f"--config={experiment}", f"--workdir={workdir}", "--vectorize=true"
  )
  assert result.returncode == 0, result.stderr
  record = json.loads((workdir / "sweep.json").read_text())
  assert {t["trials_in_program"] for t in record["timing"].values()} == {3}
  markdown = (workdir / "table.md").read_text()
  assert (
    markdown == result.stdout.split("sweep.png\n")[1].split(f"{workdir}/table.md")[0].strip() + "\n"
  )
  lines = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in markdown.splitlines()}
  for row, trials_of_row in (("GAN", range(3)), ("PacGAN2", range(3, 6))):
    finals = [_curve(workdir / f"trial_{k:03d}")[-1] for k in trials_of_row]
    assert all(f["step"] == 5 for f in finals)
    for column, metric in ((2, "eval/modes"), (4, "eval/high_quality_percent")):
      values = np.array([f[metric] for f in finals])
      mean, error = values.mean(), values.std(ddof=1) / np.sqrt(3)
      assert lines[row][column] == f"{mean:.3g} ± {error:.2g}", (row, metric, lines[row])
    assert lines[row][5] == "3 of 3"
  assert lines["GAN"][1] == "6.3 ± 0.5" and lines["PacGAN2"][1] == "—"
  with open(workdir / "sweep.csv") as f:  # each trial's last losses and its final evaluation
    assert all(row["g_loss"] and row["eval/modes"] for row in csv.DictReader(f))
