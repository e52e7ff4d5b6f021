"""python -m gan_jax.main --config=experiments/dcgan.py --workdir=runs/x [--config.a.b=value]"""

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import UserError
from gan_jax.cli import fail, parse_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment file (experiments/*.py)",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory; an existing one is resumed")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize() first")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if _CONFIG.value is None or not _WORKDIR.value:
    fail("both --config=experiments/NAME.py and --workdir=DIR are required")
  try:
    config = _CONFIG.value.to_dict()   # the file loads lazily: its errors surface here
  except Exception as e:
    fail(f"cannot load --config: {str(e).strip().splitlines()[-1]}")
  logging.set_verbosity(logging.ERROR)
  from gan_jax import parallel, train   # after flag parsing: imports JAX
  if _MULTIHOST.value:
    parallel.initialize_multihost()
  try:
    parallel.configure_cpu(config["parallel"]["cpu_devices"],
                           config["parallel"]["cpu_async_dispatch"])
    train.train_and_evaluate(ml_collections.ConfigDict(config), _WORKDIR.value)
  except UserError as e:
    fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
