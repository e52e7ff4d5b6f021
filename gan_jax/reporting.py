"""What a run writes as it goes: metrics.jsonl, TensorBoard events and the terminal progress
line."""

import concurrent.futures
import functools
import json
import math
import os
import sys
import time

from gan_jax import UserError


def write_atomically(path: str, text: str) -> None:
  """Replace `path` with `text` all at once: a crash leaves the old file or the new, never part."""
  temporary = f"{path}.tmp"
  with open(temporary, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(temporary, path)


class MetricsLog:
  """workdir/metrics.jsonl: one JSON object per logged step. Only deterministic values go here,
  so two runs of the same config give the same file, byte for byte."""

  def __init__(self, path: str, resume_step: int):
    self.path = path
    self.records = read_metrics(path) if os.path.exists(path) else []
    # Lines past the checkpoint we resume from are recomputed, identically, by this run.
    self.records = [r for r in self.records if r["step"] <= resume_step]
    write_atomically(path, "".join(json.dumps(r) + "\n" for r in self.records))

  def write(self, record: dict) -> None:
    self.records.append(record)
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")


def read_metrics(path: str) -> list[dict]:
  """The records of a metrics.jsonl; a last line cut short by a crash is dropped with a warning
  (the run recomputes it on resume)."""
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as e:
      if i < len(lines) - 1:
        raise UserError(
          f"{path}, line {i + 1}, is not a JSON record ({e}); the file was edited or damaged"
        ) from e
      print(f"warning: dropped a torn last line of {path} (a crash cut it short)", file=sys.stderr)
  return records


@functools.cache
def tensorboard_modules() -> concurrent.futures.Future:
  """(clu.metric_writers, tensorflow, TensorBoard's HParams API), imported on a background thread
  from the first call on.

  All three import TensorFlow, 3.6 s on a 2-core CPU: started when a run opens, the import
  overlaps its compiles and first steps, and commands that write no TensorBoard events (sample,
  evaluate, curves, errors) never pay it."""

  def load():
    import tensorflow as tf
    from clu import metric_writers
    from tensorboard.plugins.hparams import api as hparams

    return metric_writers, tf, hparams

  return concurrent.futures.ThreadPoolExecutor(1, "import_tensorflow").submit(load)


class TensorBoardWriter:
  """CLU's AsyncWriter over its SummaryWriter into workdir/tensorboard, made at its first write."""

  def __init__(self, workdir: str):
    self.logdir, self._writer = os.path.join(workdir, "tensorboard"), None
    tensorboard_modules()  # starts the import

  def _get(self):
    if self._writer is None:
      metric_writers, _, _ = tensorboard_modules().result()
      self._writer = metric_writers.AsyncWriter(metric_writers.SummaryWriter(self.logdir))
    return self._writer

  def write_scalars(self, step: int, scalars: dict) -> None:
    self._get().write_scalars(step, scalars)

  def write_images(self, step: int, images: dict) -> None:
    self._get().write_images(step, images)

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


class Progress:
  """`step 1200/2000 | d_loss 1.234 g_loss 0.987 | 45.6 steps/s | ETA 17s` on stdout."""

  def __init__(self, start_step: int, num_steps: int, prefix: str = ""):
    self.num_steps, self.prefix = num_steps, prefix
    self.last_step, self.last_time = start_step, time.perf_counter()

  def report(self, step: int, metrics: dict) -> float:
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    eta = (self.num_steps - step) / rate if rate > 0 else math.inf
    losses = " ".join(f"{k} {metrics[k]:.4f}" for k in ("d_loss", "g_loss"))
    speed = f"{rate:.2f} steps/s | ETA {_duration(eta)}"
    print(
      f"{self.prefix}step {step}/{self.num_steps} | {losses} | {speed}",
      flush=True,
      file=sys.stdout,
    )
    return rate


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  minutes, s = divmod(int(seconds), 60)
  hours, m = divmod(minutes, 60)
  return f"{hours}h{m:02d}m" if hours else f"{m}m{s:02d}s" if m else f"{s}s"


class OneStepBehind:
  """Holds a step's metrics (device arrays) until the next step has been dispatched, then hands
  them to `write`: reading them then does not stall the device between steps."""

  def __init__(self, write):
    self._write, self._pending = write, None

  def push(self, step: int, metrics) -> None:
    self.flush()
    self._pending = (step, metrics)

  def flush(self) -> None:
    """Write what is pending (before a checkpoint or an evaluation, and at the end)."""
    if self._pending:
      pending, self._pending = self._pending, None
      self._write(*pending)
