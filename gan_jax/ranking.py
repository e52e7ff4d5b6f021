"""Which trials of a sweep made the best GAN: the quality metric that ranks them (config.sweep),
trials that differ only in their seed gathered into one setting (mean +- standard error, min-max),
the best settings as a short table, and the sweep in TensorBoard's HParams dashboard."""

import dataclasses
import json
import math
import os

import numpy as np
from tensorboard.plugins.hparams import summary_v2 as hp

from gan_jax import UserError, reporting
from gan_jax.metrics import evaluation


@dataclasses.dataclass(frozen=True)
class Quality:
  """Metrics (evaluation keys without "eval/"), compared in turn, each with its goal."""

  metrics: tuple[str, ...]
  goals: tuple[str, ...]

  def key(self, values: dict) -> tuple:
    """Sorts best first; a trial without the metrics last."""
    key = []
    for metric, goal in zip(self.metrics, self.goals):
      value = values.get(metric)
      if value is None or not math.isfinite(value):
        key.append(math.inf)
      else:
        key.append(-value if goal == "max" else value)
    return tuple(key)


def quality(config) -> Quality | None:
  """The metric of config.sweep, checked against what the evaluation of `config` can report;
  None when it can report nothing (images without config.eval_classifier, no metric asked)."""
  available = evaluation.goals(config)
  names = tuple(m.strip() for m in config.sweep.metric.split(",") if m.strip())
  images = config.data.source not in ("toy", "stacked_mnist")
  if not names:
    if images and not config.eval_classifier:
      return None
    names = tuple(available)[:2]
  known = sorted({name for kind in evaluation.GOALS.values() for name in kind})
  for name in names:
    if name not in known:
      raise UserError(f"config.sweep.metric: unknown metric {name!r} (metrics: {', '.join(known)})")
    if name not in available:
      raise UserError(
        f"config.sweep.metric={name} is not reported for data.source={config.data.source} "
        f"(it reports {', '.join(available)})"
      )
  if images and not config.eval_classifier:
    raise UserError(
      f"config.sweep.metric={','.join(names)} is measured by a classifier: set "
      "config.eval_classifier=DIR (python -m gan_jax.classifier trains one)"
    )
  goals = tuple(config.sweep.goal or available[name] for name in names)
  return Quality(names, goals)


def final_evaluation(run_dir: str) -> dict:
  """The last evaluation record of a run: {metric: value} without the "eval/" prefix."""
  records = reporting.read_metrics(os.path.join(run_dir, "metrics.jsonl"))
  evaluations = [r for r in records if any(k.startswith("eval/") for k in r)]
  if not evaluations:
    return {}
  last = evaluations[-1]
  return {"step": last["step"], **{k[5:]: v for k, v in last.items() if k.startswith("eval/")}}


@dataclasses.dataclass
class Setting:
  """The trials of one setting: equal overrides but for the seed."""

  overrides: dict
  trials: list[str]
  values: list[dict]  # each trial's final metrics

  def label(self) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in self.overrides.items()) or "(base config)"

  def metric(self, name: str) -> np.ndarray:
    return np.array([v[name] for v in self.values if v.get(name) is not None], float)

  def mean_values(self) -> dict:
    return {
      name: float(self.metric(name).mean()) for name in self.values[0] if self.metric(name).size
    }


def _short(value) -> str:
  return f"{value:.3g}" if isinstance(value, float) else str(value)


def settings(trials: list[dict], names: list[str], values: dict[str, dict]) -> list[Setting]:
  """Trials grouped by their overrides without "seed", in the sweep's order."""
  groups: dict[str, Setting] = {}
  for name, overrides in zip(names, trials):
    setting = {k: v for k, v in overrides.items() if k != "seed"}
    group = groups.setdefault(json.dumps(setting, sort_keys=True), Setting(setting, [], []))
    group.trials.append(name)
    group.values.append(values.get(name, {}))
  return list(groups.values())


def spread(values: np.ndarray) -> str:
  """mean ± standard error [min, max] (just the value for one seed)."""
  if values.size == 0:
    return "—"
  if values.size == 1:
    return f"{values[0]:.4g}"
  error = values.std(ddof=1) / math.sqrt(values.size)
  return f"{values.mean():.4g} ± {error:.2g} [{values.min():.4g}, {values.max():.4g}]"


def settings_table(groups: list[Setting], q: Quality, heading: str = "setting") -> str:
  """The settings as a Markdown table, best first by their mean over seeds; settings whose trials
  trained further (successive halving) first."""
  furthest = lambda s: -max(s.metric("step"), default=0)
  ranked = sorted(groups, key=lambda s: (furthest(s), *q.key(s.mean_values())))
  header = ["rank", heading, "seeds", "steps"]
  header += [f"{m} ({g})" for m, g in zip(q.metrics, q.goals)]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for rank, s in enumerate(ranked, 1):
    steps = "/".join(str(int(step)) for step in sorted(set(s.metric("step")), reverse=True))
    cells = [str(rank), s.label(), str(len(s.trials)), steps or "—"]
    cells += [spread(s.metric(m)) for m in q.metrics]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_hparams(workdir: str, names: list[str], hparams: list[dict], q: Quality | None) -> None:
  """TensorBoard's HParams dashboard for `tensorboard --logdir WORKDIR`: the sweep's hyperparameters
  and metrics, and each trial (its run directory) as a session whose metrics are the scalars its
  training wrote to TRIAL/tensorboard. Rewritten whole at each summary."""
  fields = sorted({k for h in hparams for k in h})
  domains = []
  for field in fields:
    values = sorted({h[field] for h in hparams if field in h}, key=str)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
      domains.append(hp.HParam(field, hp.Discrete([float(v) for v in values])))
    else:
      domains.append(hp.HParam(field, hp.Discrete([str(v) for v in values])))
  metrics = [hp.Metric(f"eval/{m}", group="tensorboard") for m in (q.metrics if q else ())]
  metrics += [hp.Metric(k, group="tensorboard") for k in ("d_loss", "g_loss")]
  summaries = [(workdir, hp.hparams_config_pb(hparams=domains, metrics=metrics))]
  for name, h in zip(names, hparams):
    values = {
      d: (float(h[d.name]) if d.domain.dtype is float else str(h[d.name]))
      for d in domains
      if d.name in h
    }
    summaries.append((os.path.join(workdir, name), hp.hparams_pb(values, trial_id=name)))
  for logdir, summary in summaries:
    for old in os.listdir(logdir):
      if old.startswith("events.out.tfevents.") and old.endswith(".hparams"):
        os.remove(os.path.join(logdir, old))
    writer = reporting.TensorBoardWriter(logdir, suffix=".hparams")
    writer.write_summary(0, summary)
    writer.close()
