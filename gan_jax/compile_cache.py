"""The commands' cache of compiled programs on disk: JAX's persistent compilation cache, so that
a rerun of a command (resumed, longer, other seeds or rates; `sample` and `evaluate` of a run)
reads the programs it compiled before instead of compiling them again."""

import hashlib
import os

import jax

from gan_jax import cpu


def enable() -> None:
  """In $JAX_COMPILATION_CACHE_DIR when that is set, else in $XDG_CACHE_HOME/gan_jax/jit
  (~/.cache by default), at most 1 GiB with the least recently used programs evicted first.
  JAX_ENABLE_COMPILATION_CACHE=false turns it off; a folder that cannot be written is skipped.
  Call before JAX compiles."""
  if jax.config.jax_compilation_cache_dir is not None:  # the user's own
    return
  home_cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  # XLA:CPU compiles for the host's vector extensions, and a home folder may be shared by a
  # cluster's different CPUs: each kind keeps programs of its own.
  host = hashlib.sha256(cpu.instruction_sets().encode()).hexdigest()[:12]
  path = os.path.join(home_cache, "gan_jax", "jit", host)
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return
  if os.access(path, os.W_OK):
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_compilation_cache_max_size", 2**30)
    # JAX keeps only programs that took 1 s to compile; G's sampler and the random streams' small
    # programs take 0.1-0.3 s each, far longer than reading them back
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
