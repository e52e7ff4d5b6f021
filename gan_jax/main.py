"""python -m gan_jax.main --config=experiments/dcgan.py --workdir=runs/x [--config.a.b=value]

Multi-host: the same command on every host with --multihost (and, outside a cluster that JAX
detects, --coordinator=HOST:PORT --num_processes=N --process_id=I)."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import UserError
from gan_jax.cli import fail, load_config, parse_flags, stopped

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "experiment file (experiments/*.py)", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory; an existing one is resumed")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "join a multi-host run (jax.distributed)")
_COORDINATOR = flags.DEFINE_string(
  "coordinator", "", "with --multihost: HOST:PORT of process 0 (default: from the cluster)"
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "with --multihost: processes in all")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "with --multihost: this process's index")
_PEER_TIMEOUT = flags.DEFINE_integer(
  "peer_timeout", 60, "with --multihost: seconds of silence after which a process counts as dead"
)
_SUPERVISED = "GAN_JAX_SUPERVISED"  # set in the child process that --multihost trains in


def main(argv: list[str]) -> None:
  config = load_config(argv, _CONFIG, _WORKDIR)
  if _MULTIHOST.value and not os.environ.get(_SUPERVISED):
    _train_in_child(sys.argv)
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  from gan_jax import cpu, parallel, train  # after flag parsing: imports JAX

  try:
    cpu.configure(config.parallel.cpu_devices, config.parallel.cpu_async_dispatch)
    if _MULTIHOST.value:
      parallel.initialize_multihost(
        _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _PEER_TIMEOUT.value
      )
    train.train_and_evaluate(config, _WORKDIR.value)
  except UserError as e:
    fail(str(e))
  except train.Stopped as e:
    stopped(e)


def _stop_when_parent_dies() -> None:
  """In the child: SIGTERM (a clean stop, with a checkpoint) if this process dies (Linux)."""
  with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _train_in_child(argv: list[str]) -> None:
  """Run this command again in a child process and report how it ended. When another process of
  a multi-host run dies, JAX's coordination service aborts the others from C++ with a page of
  logs; read from the child's stderr, that ends here in one line. Signals are passed on."""
  child = subprocess.Popen(
    [sys.executable, "-m", "gan_jax.main", *argv[1:]],
    env={**os.environ, _SUPERVISED: "1"},
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


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
