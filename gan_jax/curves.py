"""Loss curves: compare two runs, overlay several, and record or reproduce reference curves.

  python -m gan_jax.curves compare RUN_A RUN_B [--metrics=d_loss,g_loss] [--rtol=1e-5 --atol=1e-6]
  python -m gan_jax.curves plot RUN... [--out=curves.png]
  python -m gan_jax.curves record experiments/reference/NAME.json   (runs the file's command)
  python -m gan_jax.curves reproduce experiments/reference/NAME.json [--config.data.manual_dir=...]

A RUN is a run directory or a metrics.jsonl file. `compare` exits 1 when a metric differs by more
than atol + rtol * |B| at any step, or the runs log different steps; --rtol=0 --atol=0 asks for
bit-for-bit equality.
"""

import sys

from absl import flags, logging

from gan_jax import UserError
from gan_jax.cli import fail, parse_flags, run

_METRICS = flags.DEFINE_list("metrics", ["d_loss", "g_loss"], "metrics to compare")
_RTOL = flags.DEFINE_float("rtol", 1e-5, "relative tolerance")
_ATOL = flags.DEFINE_float("atol", 1e-6, "absolute tolerance")
_OUT = flags.DEFINE_string("out", "curves.png", "picture written by `plot`")


def main(argv: list[str]) -> None:
  logging.set_verbosity(logging.FATAL)  # what users need to know ends in one line
  from gan_jax import compile_cache, plotting, reference  # after flag parsing, as every command

  compile_cache.enable()
  command, args = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
  config_args = [a for a in args if a.startswith("--config.")]
  args = [a for a in args if not a.startswith("--config.")]
  rtol, atol = _RTOL.value, _ATOL.value
  try:
    if command == "compare" and len(args) == 2:
      agree, lines = reference.compare(
        reference.load(args[0]), reference.load(args[1]), _METRICS.value, rtol, atol
      )
    elif command == "reproduce" and len(args) == 1:
      agree, lines = reference.reproduce(args[0], _METRICS.value, rtol, atol, config_args)
    elif command == "record" and len(args) == 1:
      reference.record(args[0], config_args)
      print(f"recorded {args[0]}")
      return
    elif command == "plot" and args:
      plotting.save_overlay({run: reference.load(run) for run in args}, _OUT.value, _METRICS.value)
      print(f"wrote {_OUT.value}")
      return
    else:
      fail("usage: curves compare RUN_A RUN_B | plot RUN... | record REF.json | reproduce REF.json")
  except (FileNotFoundError, RuntimeError, UserError) as e:
    fail(str(e))
  print("\n".join(lines))
  print("curves agree" if agree else f"curves DIFFER beyond rtol={rtol} atol={atol}")
  sys.exit(0 if agree else 1)


def _parse(argv: list[str]) -> list[str]:
  """Flags of this tool for absl; --config.* overrides pass through to the training command."""
  overrides = [a for a in argv[1:] if a.startswith("--config.")]
  return parse_flags([a for a in argv if not a.startswith("--config.")]) + overrides


if __name__ == "__main__":
  run(main, flags_parser=_parse)
