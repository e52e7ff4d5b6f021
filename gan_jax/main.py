"""python -m gan_jax.main --config=experiments/dcgan.py --workdir=runs/x [--config.a.b=value]"""

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import UserError
from gan_jax.cli import fail, load_config, parse_flags, stopped

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "experiment file (experiments/*.py)", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory; an existing one is resumed")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize() first")


def main(argv: list[str]) -> None:
  config = load_config(argv, _CONFIG, _WORKDIR)
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  from gan_jax import cpu, parallel, train  # after flag parsing: imports JAX

  if _MULTIHOST.value:
    parallel.initialize_multihost()
  try:
    cpu.configure(config.parallel.cpu_devices, config.parallel.cpu_async_dispatch)
    train.train_and_evaluate(config, _WORKDIR.value)
  except UserError as e:
    fail(str(e))
  except train.Stopped as e:
    stopped(e)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
