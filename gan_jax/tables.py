"""Published tables reproduced by a sweep. A table experiment's `TABLE` names its rows (the config
overrides that make each row's method), the metrics it reports and the paper's numbers; its
`get_sweep = TABLE.sweep` runs every row with every seed. After the sweep each row's final
evaluation is summarised over its seeds as mean +- standard error, beside the paper's numbers, in
table.md."""

import dataclasses
import json
import math
import os

import numpy as np

from gan_jax import config as config_lib
from gan_jax import ranking


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  overrides: dict  # the config fields that make this row's method
  paper: dict  # metric -> the published number, as printed ("6.3 ± 0.5"); absent: not quoted


@dataclasses.dataclass(frozen=True)
class Table:
  title: str
  source: str  # where the paper's numbers are from
  metrics: dict  # metric (an eval record's key, without "eval/") -> column heading
  rows: tuple[Row, ...]
  seeds: tuple[int, ...] = tuple(range(10))  # the papers' 10 runs per row

  def sweep(self, hyper=None) -> list[dict]:
    """Every row with every seed, as an experiment's get_sweep(hyper); a row's seeds differ only
    in numbers, so they share one program (gan_jax.trials)."""
    del hyper
    return [{**row.overrides, "seed": seed} for row in self.rows for seed in self.seeds]


def load(config_file: str) -> Table | None:
  """The experiment's `TABLE`, if it reproduces one."""
  return getattr(config_lib.experiment_module(config_file), "TABLE", None)


def mean_and_error(values) -> str:
  values = np.asarray(values, float)
  if len(values) == 1:
    return _significant(values[0], 3)
  error = values.std(ddof=1) / math.sqrt(len(values))
  return f"{_significant(values.mean(), 3)} ± {_significant(error, 2)}"


def _significant(x: float, digits: int) -> str:
  """`digits` significant digits, but whole numbers written out: 1000 modes, not 1e+03."""
  text = f"{x:.{digits}g}"
  return f"{x:.0f}" if "e+" in text else text


def write(table: Table, workdir: str, names: list[str], trials: list[dict]) -> str:
  """table.md (and table.json, every trial's numbers) in `workdir`; returns the Markdown."""
  results = {name: ranking.final_evaluation(os.path.join(workdir, name)) for name in names}
  header = ["method"] + [
    f"{label} ({who})" for label in table.metrics.values() for who in ("paper", "ours")
  ]
  lines = [f"**{table.title}** (paper: {table.source}; ours: mean ± standard error over seeds)", ""]
  lines += ["| " + " | ".join(header + ["runs", "steps"]) + " |", "|" + "---|" * (len(header) + 2)]
  record = []
  for row in table.rows:
    members = [n for n, t in zip(names, trials) if row.overrides.items() <= t.items()]
    done = [results[n] for n in members if results[n]]
    cells = [row.name]
    for metric in table.metrics:
      cells.append(row.paper.get(metric, "—"))
      cells.append(mean_and_error([r[metric] for r in done]) if done else "not run")
    steps = sorted({r["step"] for r in done})
    cells += [f"{len(done)} of {len(members)}", ", ".join(map(str, steps)) or "—"]
    lines.append("| " + " | ".join(cells) + " |")
    record.append({"row": row.name, "paper": row.paper, "trials": {n: results[n] for n in members}})
  markdown = "\n".join(lines) + "\n"
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(markdown)
  with open(os.path.join(workdir, "table.json"), "w") as f:
    json.dump(record, f, indent=2)
  return markdown
