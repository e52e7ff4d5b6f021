"""Sweeps: the hyper helpers, vectorised trials equal to lone runs, grouping, resume, summary."""

import csv
import json
import os

import numpy as np
import pytest

from gan_jax import UserError, experiment, hyper, ranking, tables, train, trials

from conftest import load_experiment, run_python, tensorboard_events, tiny_toy_config


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


def _losses(path):
  """The loss records of a run (a sweep also evaluates each trial at its end)."""
  return [r for r in _curve(path) if "d_loss" in r]


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
  curves = [_losses(tmp_path / "sweep" / f"trial_{k:03d}") for k in range(3)]
  assert curves[0] != curves[1]
  for k in (1, 2):
    train.train_and_evaluate(trials.trial_config(base, sweep[k]), str(tmp_path / f"alone{k}"))
    alone = _losses(tmp_path / f"alone{k}")
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
  assert [r["step"] for r in _losses(os.path.join(workdir, "trial_001"))] == [2, 4, 6, 8]
  retrained = lambda *a, **k: pytest.fail("re-trained a finished trial")
  monkeypatch.setattr(trials, "train_trials", retrained)
  monkeypatch.setattr(train, "train_and_evaluate", retrained)
  rows = trials.run_sweep(tiny_toy_config(**{"train.num_steps": 8}), sweep, workdir)
  with open(os.path.join(workdir, "sweep.csv")) as f:
    table = list(csv.DictReader(f))
  # best first: more modes, then more samples of high quality (each trial's final evaluation)
  finals = {
    t["trial"]: (-float(t["eval/modes"]), -float(t["eval/high_quality_percent"])) for t in table
  }
  assert [t["trial"] for t in table] == sorted(finals, key=lambda n: (finals[n], n))
  assert {t["trial"]: t["seed"] for t in table} == {"trial_000": "0", "trial_001": "1"}
  assert all(t["g_loss"] and t["step"] == "8" for t in table)
  record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
  assert record["timing"]["trial_000"]["seconds"] > 0  # timings there, not in sweep.csv
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
  record = json.loads((workdir / "sweep.json").read_text())
  assert {t["trials_in_program"] for t in record["timing"].values()} == {12}
  # the terminal's summary: the best settings, each over its 3 seeds, as in summary.md
  summary = (workdir / "summary.md").read_text().splitlines()
  assert len(summary) == 2 + 4 and "| 1 | optimizer.g.lr=" in summary[2]
  assert "\n".join(summary[:6]) in result.stdout
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


def test_table_numbers_keep_three_significant_digits_without_exponents():
  assert tables.mean_and_error([6.25]) == "6.25"
  assert tables.mean_and_error([1000.0]) == "1000"  # Stacked MNIST's modes
  assert tables.mean_and_error([999.6]) == "1000"
  assert tables.mean_and_error([990.0, 1000.0]) == "995 ± 5"
  assert tables.mean_and_error([100.0, 400.0]) == "250 ± 150"
  assert tables.mean_and_error([0.0012, 0.0014]) == "0.0013 ± 0.0001"


def test_table_command_summarises_each_row_over_its_seeds(tmp_path):
  """A table experiment's rows x seeds from one command: each row's seeds train as one program,
  are evaluated at their last step, and table.md puts their mean +- standard error beside the
  paper's numbers. The tiny trials' evaluations are then replaced by distinct ones that rank the
  last trials first, and the command run again (summary and table only): each row must still be
  its own trials (table.md took the trials best first as if in the sweep's order)."""
  experiment = tmp_path / "table.py"
  experiment.write_text(TABLE_EXPERIMENT)
  workdir = tmp_path / "t"
  command = ["-m", "gan_jax.sweep", f"--config={experiment}", f"--workdir={workdir}"]
  result = run_python(*command, "--vectorize=true")
  assert result.returncode == 0, result.stderr
  record = json.loads((workdir / "sweep.json").read_text())
  assert {t["trials_in_program"] for t in record["timing"].values()} == {3}
  for k in range(6):
    records = _curve(workdir / f"trial_{k:03d}")
    assert "eval/modes" in records[-1]
    records[-1] |= {"eval/modes": float(k), "eval/high_quality_percent": 10.0 * k}
    text = "".join(json.dumps(r) + "\n" for r in records)
    (workdir / f"trial_{k:03d}" / "metrics.jsonl").write_text(text)
  result = run_python(*command)
  assert result.returncode == 0 and "training" not in result.stdout, result.stderr
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


def test_quality_metric_is_checked_against_what_the_data_reports():
  toy, images = tiny_toy_config(), load_experiment("dcgan")
  assert ranking.quality(toy) == ranking.Quality(("modes", "high_quality_percent"), ("max", "max"))
  assert ranking.quality(images) is None  # no classifier: nothing measures quality
  images.eval_classifier = "runs/classifier"
  assert ranking.quality(images) == ranking.Quality(("fid", "kid"), ("min", "min"))
  images.sweep.metric, images.sweep.goal = "recall", "min"
  assert ranking.quality(images) == ranking.Quality(("recall",), ("min",))
  for field, value, message in (
    ("metric", "sharpness", "unknown metric 'sharpness'"),
    ("metric", "modes", "config.sweep.metric=modes is not reported for data.source=tfds"),
  ):
    images.sweep[field] = value
    with pytest.raises(UserError, match=message):
      ranking.quality(images)
  images.sweep.metric, images.eval_classifier = "fid", ""
  with pytest.raises(UserError, match="config.eval_classifier=DIR"):
    ranking.quality(images)


def test_settings_aggregate_their_seeds():
  sweep = hyper.product(hyper.sweep("optimizer.d.lr", [1e-4, 1e-3]), hyper.sweep("seed", [0, 1, 2]))
  names = [f"trial_{i:03d}" for i in range(6)]
  modes = [3, 5, 4, 8, 8, 7]
  values = {
    n: {"step": 100, "modes": m, "high_quality_percent": 10.0 * i}
    for i, (n, m) in enumerate(zip(names, modes))
  }
  groups = ranking.settings(sweep, names, values)
  assert [g.overrides for g in groups] == [{"optimizer.d.lr": 1e-4}, {"optimizer.d.lr": 1e-3}]
  assert [g.trials for g in groups] == [names[:3], names[3:]]
  table = ranking.settings_table(groups, ranking.quality(tiny_toy_config())).splitlines()
  best = np.array([8, 8, 7.0])
  expected = f"{best.mean():.4g} ± {best.std(ddof=1) / np.sqrt(3):.2g} [7, 8]"
  assert table[2] == f"| 1 | optimizer.d.lr=0.001 | 3 | 100 | {expected} | 40 ± 5.8 [30, 50] |"
  assert table[3].startswith("| 2 | optimizer.d.lr=0.0001 | 3 | 100 | 4 ± 0.58 [3, 5] |")


def test_trials_one_after_another_share_one_compiled_step(tmp_path, monkeypatch):
  built = []
  build = experiment.build
  monkeypatch.setattr(experiment, "build", lambda *a: built.append(build(*a)) or built[-1])
  sweep = [{"seed": 0}, {"seed": 1, "optimizer.d.lr": 1e-3}, {"seed": 2, "ema_decay": 0.9}]
  trials.run_sweep(tiny_toy_config(**{"train.num_steps": 4}), sweep, str(tmp_path), False)
  assert len(built) == 1 and built[0].step._cache_size() == 1
  curves = [_curve(tmp_path / f"trial_{k:03d}") for k in range(3)]
  assert curves[0] != curves[1] != curves[2]  # each trial its own seed and numbers
  # TensorBoard's HParams: the sweep's hyperparameters and metrics, and a session per trial
  experiment_info = _hparams(tmp_path, "_hparams_/experiment").experiment
  assert [h.name for h in experiment_info.hparam_infos] == ["ema_decay", "optimizer.d.lr", "seed"]
  assert [m.name.tag for m in experiment_info.metric_infos][:2] == [
    "eval/modes",
    "eval/high_quality_percent",
  ]
  for k, overrides in enumerate(sweep):
    session = _hparams(tmp_path / f"trial_{k:03d}", "_hparams_/session_start_info")
    values = {key: v.number_value for key, v in session.session_start_info.hparams.items()}
    assert values == pytest.approx(overrides)


def _hparams(logdir, tag):
  from tensorboard.plugins.hparams import plugin_data_pb2

  events = tensorboard_events(logdir)
  return plugin_data_pb2.HParamsPluginData.FromString(events.PluginTagToContent("hparams")[tag])


@pytest.mark.parametrize(
  "experiment_name,fields,strategy,message",
  [
    ("toy_ring", {"sweep.goal": "up"}, "grid", "config.sweep.goal='up' is not one of"),
    ("dcgan", {"sweep.metric": "modes"}, "grid", "modes is not reported for data.source=tfds"),
    ("dcgan", {}, "halving", "set config.eval_classifier=DIR"),
    ("toy_ring", {}, "pbt", "this sweep varies none of them"),
  ],
)
def test_sweep_errors_come_before_anything_is_written(
  experiment_name, fields, strategy, message, tmp_path
):
  config = load_experiment(experiment_name)
  for field, value in fields.items():
    section, name = field.split(".")
    config[section][name] = value
  with pytest.raises(UserError, match=message):
    trials.run_sweep(config, [{"seed": 0}, {"seed": 1}], str(tmp_path / "s"), strategy=strategy)
  assert not (tmp_path / "s").exists()


def test_summary_puts_the_best_trials_and_settings_first(tmp_path):
  """From hand-written final evaluations: sweep.csv and summary.md are best first, ties of the
  first metric broken by the second."""
  finals = [(3, 10.0), (8, 5.0), (8, 20.0), (1, 90.0)]  # modes, high quality %
  names = [f"trial_{k:03d}" for k in range(4)]
  sweep = [{"optimizer.d.lr": lr, "seed": seed} for lr in (1e-4, 1e-3) for seed in (0, 1)]
  for name, (modes, percent) in zip(names, finals):
    (tmp_path / name).mkdir()
    records = [{"step": 5, "d_loss": 1.0, "g_loss": 1.0}]
    records.append({"step": 5, "eval/modes": modes, "eval/high_quality_percent": percent})
    (tmp_path / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  quality = ranking.quality(tiny_toy_config())
  rows = trials.summarize(str(tmp_path), names, sweep, quality, {})
  assert [r["trial"] for r in rows] == ["trial_002", "trial_001", "trial_000", "trial_003"]
  with open(tmp_path / "sweep.csv") as f:
    assert [r["trial"] for r in csv.DictReader(f)] == [
      "trial_002",
      "trial_001",
      "trial_000",
      "trial_003",
    ]
  summary = (tmp_path / "summary.md").read_text().splitlines()
  assert (
    summary[2] == "| 1 | optimizer.d.lr=0.0001 | 2 | 5 | 5.5 ± 2.5 [3, 8] | 7.5 ± 2.5 [5, 10] |"
  )
  assert summary[3] == "| 2 | optimizer.d.lr=0.001 | 2 | 5 | 4.5 ± 3.5 [1, 8] | 55 ± 35 [20, 90] |"
