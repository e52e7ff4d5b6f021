"""python -m gan_jax.main --config=experiments/dcgan.py --workdir=runs/x [--config.a.b=value]

Multi-host: the same command on every host with --multihost (and, outside a cluster that JAX
detects, --coordinator=HOST:PORT --num_processes=N --process_id=I)."""

import os
import sys

from absl import flags, logging
from ml_collections import config_flags

from gan_jax import UserError
from gan_jax.cli import SUPERVISED, fail, load_config, run, run_in_child, stopped

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


def main(argv: list[str]) -> None:
  config = load_config(argv, _CONFIG, _WORKDIR)
  if _MULTIHOST.value and not os.environ.get(SUPERVISED):
    run_in_child("gan_jax.main", sys.argv)
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  from gan_jax import compile_cache, cpu, parallel, train  # after flag parsing: imports JAX

  try:
    cpu.configure(config.parallel.cpu_devices, config.parallel.cpu_async_dispatch)
    compile_cache.enable()
    if _MULTIHOST.value:
      parallel.initialize_multihost(
        _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _PEER_TIMEOUT.value
      )
    train.train_and_evaluate(config, _WORKDIR.value)
  except UserError as e:
    fail(str(e))
  except train.Stopped as e:
    stopped(e)


if __name__ == "__main__":
  run(main)
