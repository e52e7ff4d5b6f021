"""What a run writes as it goes: metrics.jsonl, TensorBoard events and the terminal progress
line."""

import io
import itertools
import json
import math
import os
import socket
import sys
import time

import numpy as np
import PIL.Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.summary.writer import record_writer

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


_event_files = itertools.count()


class TensorBoardWriter:
  """A TensorBoard event file in `logdir` (its name ending in `suffix`): scalars, images, and any
  summary proto.

  Written with TensorBoard's own record framing and summary protos, not CLU's writer: that one
  goes through tf.summary, and TensorFlow cost a sweep of 12 toy trials 4 s (3.6 s to import, on
  the cores that train, and 1 s to tear down at exit); only tfds needs it."""

  def __init__(self, logdir: str, suffix: str = ""):
    os.makedirs(logdir, exist_ok=True)
    # TensorBoard's file name pattern; the count keeps two files of one second apart
    host, count = socket.gethostname(), next(_event_files)
    name = f"events.out.tfevents.{int(time.time())}.{host}.{os.getpid()}.{count}{suffix}"
    self._records = record_writer.RecordWriter(open(os.path.join(logdir, name), "wb"))  # noqa: SIM115
    self._write(event_pb2.Event(file_version="brain.Event:2"))

  def _write(self, event) -> None:
    event.wall_time = time.time()
    self._records.write(event.SerializeToString())
    self._records.flush()

  def write_summary(self, step: int, summary) -> None:
    self._write(event_pb2.Event(step=step, summary=summary))

  def write_scalars(self, step: int, scalars: dict) -> None:
    summary = summary_pb2.Summary()
    for tag, value in scalars.items():
      summary.value.extend(scalar_summary.scalar_pb(tag, value).value)
    self.write_summary(step, summary)

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """A uint8 (H, W, C) image, C 1 or 3, as a PNG."""
    png = io.BytesIO()
    PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(png, "PNG")
    h, w, c = image.shape
    encoded = summary_pb2.Summary.Image(
      height=h, width=w, colorspace=c, encoded_image_string=png.getvalue()
    )
    self.write_summary(step, summary_pb2.Summary(value=[dict(tag=tag, image=encoded)]))

  def close(self) -> None:
    self._records.close()


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
