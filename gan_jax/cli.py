"""What the command-line entry points share: absl's app and flag parsing, one-line errors, and
the end of the process."""

import atexit
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading

from absl import app, flags

SUPERVISED = "GAN_JAX_SUPERVISED"  # set in the child process that a multi-host run trains in


def fail(message: str) -> None:
  """Report a user error on one line of stderr and exit with status 2."""
  print(f"error: {message}", file=sys.stderr)
  _exit(2)


def _exit(status: int) -> None:
  """Exit now. The run directory is closed by then; a library's thread still unwinding a failed
  write (Orbax's after a full disk) would otherwise print tracebacks at interpreter shutdown."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)


def run(main, flags_parser=None) -> None:
  """absl's app.run of a command's `main` (flags parsed by `parse_flags` unless given). Once main
  returns or calls sys.exit, the process ends as the interpreter would end it, but without its
  teardown of the imported modules, which takes 0.6-1 s for JAX, Flax, Orbax and matplotlib:
  as in Python's own exit, threads that are not daemons are joined (after the executors' exit
  hooks), the atexit handlers run (logging's flush, JAX's clean-up and distributed shutdown), and
  only then does the process exit. Every file a command writes is closed by then (run
  directories and writers are context managers)."""

  def main_then_exit(argv):
    try:
      status = main(argv)  # None, or an int exit status (curves' sys.exit(1))
    except SystemExit as e:
      status = e.code
    threading._shutdown()  # what the interpreter's exit runs first: its hooks, then the joins
    atexit._run_exitfuncs()
    _exit(status or 0)

  app.run(main_then_exit, flags_parser=flags_parser or parse_flags)


def stopped(stop) -> None:
  """End a run stopped by a signal (train.Stopped) with one line and the signal's exit status."""
  print(stop, file=sys.stderr)
  _exit(128 + stop.signum)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with any flag or config error reported on one line."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # flags.Error, and what a config file or override raises
    text = str(e).strip()
    missing = re.fullmatch(r"""["']*(\w+)["']*""", text)
    if missing:  # ml_collections reports an unknown override as a bare KeyError of its name
      key = missing.group(1)
      where = [a.split("=")[0] for a in argv if re.search(rf"\.{key}(=|$)", a.split("=")[0])]
      field = where[0] if where else key
      fail(f"unknown config field {field!r}: no such key in the experiment's config")
    fail(text.splitlines()[-1] if text else type(e).__name__)


def load_config(argv: list[str], config_flag, workdir_flag):
  """The --config of a command that takes --config and --workdir, or a one-line error."""
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if config_flag.value is None or not workdir_flag.value:
    fail("both --config=experiments/NAME.py and --workdir=DIR are required")
  return config_flag.value


def _stop_when_parent_dies() -> None:
  """In the child: SIGTERM (a clean stop, with a checkpoint) if this process dies (Linux)."""
  with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_in_child(module: str, argv: list[str]) -> None:
  """Run this command (python -m `module` argv[1:]) again in a child process and report how it
  ended. When another process of a multi-host run dies, JAX's coordination service aborts the
  others from C++ with a page of logs; read from the child's stderr, that ends here in one line.
  Signals are passed on."""
  child = subprocess.Popen(
    [sys.executable, "-m", module, *argv[1:]],
    env={**os.environ, SUPERVISED: "1"},
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,  # a terminal's Ctrl-C reaches the child once, through this process
    preexec_fn=_stop_when_parent_dies,
  )
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, lambda signum, frame: child.send_signal(signum))
  errors = child.stderr.read()
  status = child.wait()
  if "JAX distributed service detected fatal errors" in errors:
    fail(
      "another process of this multi-host run stopped, so this one stopped too; the checkpoints "
      "written before are intact: start every process again to resume"
    )
  sys.stderr.write(errors)
  sys.stderr.flush()
  os._exit(status if status >= 0 else 128 - status)
