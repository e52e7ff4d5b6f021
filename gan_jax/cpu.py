"""Tuning for CPU hosts: how many XLA devices a host becomes, which thread runs a step, XLA's
convolution library, glibc's malloc and the collectives' timeout. Why each pays is measured in
benchmarks/NOTES.md; here each function says what it changes."""

import ctypes
import os
import platform

import jax

from gan_jax import UserError

# XLA aborts a CPU collective whose participants arrive more than 40 s apart, which a loaded host
# (several processes sharing a few cores) can cause; a slow step is not a deadlock.
_COLLECTIVE_FLAGS = (
  "--xla_cpu_collective_call_warn_stuck_timeout_seconds=120 "
  "--xla_cpu_collective_call_terminate_timeout_seconds=1800"
)

# XLA:CPU hands convolutions, matmuls and reductions to YNNPACK by default. Its convolutions run the
# DCGAN layers slower than XLA's own (Eigen) ones, so YNNPACK keeps matmuls and reductions only.
COMPILER_OPTIONS = {
  "xla_cpu_experimental_ynn_fusion_type": (
    "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
  )
}

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def configure(devices: int, async_dispatch: bool) -> None:
  """Split a CPU host into `devices` XLA devices (0: leave JAX's default) and choose whether a
  one-device step runs on XLA's dispatch thread or on the caller's. Call before JAX runs."""
  jax.config.update("jax_cpu_enable_async_dispatch", async_dispatch)
  if not devices:
    return
  if devices > 1:  # flags given in XLA_FLAGS come later and win
    os.environ["XLA_FLAGS"] = f"{_COLLECTIVE_FLAGS} {os.environ.get('XLA_FLAGS', '')}".strip()
  try:
    jax.config.update("jax_num_cpu_devices", devices)
  except RuntimeError as e:
    raise UserError(
      "config.parallel.cpu_devices must be set before JAX starts (give it on the command line)"
    ) from e


def _on_cpu(mesh: jax.sharding.Mesh) -> bool:
  return mesh.devices.flat[0].platform == "cpu"


def compiler_options(mesh: jax.sharding.Mesh) -> dict | None:
  """XLA options for programs that run on `mesh` (COMPILER_OPTIONS on CPU devices)."""
  return COMPILER_OPTIONS if _on_cpu(mesh) else None


def reuse_freed_memory(mesh: jax.sharding.Mesh) -> None:
  """On a CPU mesh, have glibc keep the memory a step frees for the next step (process-wide).

  XLA:CPU mallocs each execution's temporary buffer afresh and frees it after. glibc serves a
  block that large with a new mmap and unmaps it on free, so every step would fault in and zero
  its pages again. Serving large blocks from the heap and not trimming it stops that, for a little
  more peak memory. Malloc settings given in the environment (GLIBC_TUNABLES, MALLOC_*_) win.
  """
  if (
    not _on_cpu(mesh)
    or platform.libc_ver()[0] != "glibc"
    or "GLIBC_TUNABLES" in os.environ
    or any(name.startswith("MALLOC_") for name in os.environ)
  ):
    return
  libc = ctypes.CDLL(None)
  libc.mallopt(_M_MMAP_MAX, 0)
  libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


# The vector extensions that XLA's, Eigen's and YNNPACK's kernels choose between at run time. Two
# CPUs that differ in them round differently, so a training run's curves drift apart.
# fmt: off
_KERNEL_ISA = (
  "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni",  # x86
  "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
  "amx_tile", "amx_bf16", "amx_int8",
  "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm", "sme",  # Arm
)
# fmt: on


def instruction_sets() -> str:
  """The architecture and the kernels' vector extensions this CPU has, e.g. "x86_64 avx avx2
  fma ...": a loss curve reproduces bit for bit only between CPUs with the same."""
  flags = set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(("flags", "Features")):
          flags = set(line.split(":", 1)[1].split())
          break
  except OSError:
    pass
  return " ".join([platform.machine(), *(isa for isa in _KERNEL_ISA if isa in flags)])


def name() -> str:
  """The processor's model name, for records of where a number was measured."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor()
