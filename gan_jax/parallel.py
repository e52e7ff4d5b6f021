"""Data parallelism: a device mesh with one named data axis, the per-device step mapped over it."""

import ctypes
import math
import os
import platform

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import UserError
from gan_jax.train_step import DATA_AXIS

# Shardings are given explicitly where they matter (shard_map specs, device_put); elsewhere, such
# as slicing one trial out of a stacked state, XLA may choose.
AUTO = jax.sharding.AxisType.Auto
TRIAL_AXIS = "trial"
BATCH_SPEC = P(None, DATA_AXIS)   # batches are (n_critic, global_batch, ...)
TRIAL_BATCH_SPEC = P(TRIAL_AXIS, None, DATA_AXIS)   # stacked trials: (trials, n_critic, batch, ...)


def initialize_multihost() -> None:
  """Join a multi-host run (coordinator and process ids come from the cluster's environment)."""
  jax.distributed.initialize()


# XLA aborts a CPU collective whose participants arrive more than 40 s apart, which a loaded host
# (several processes sharing two cores) can cause; a slow step is not a deadlock.
_CPU_COLLECTIVE_FLAGS = ("--xla_cpu_collective_call_warn_stuck_timeout_seconds=120 "
                         "--xla_cpu_collective_call_terminate_timeout_seconds=1800")


def configure_cpu(devices: int, async_dispatch: bool) -> None:
  """Split a CPU host into `devices` XLA devices (0: leave JAX's default) and choose whether a
  one-device step runs on XLA's dispatch thread or on the caller's. Call before JAX runs."""
  jax.config.update("jax_cpu_enable_async_dispatch", async_dispatch)
  if not devices:
    return
  if devices > 1:   # flags given in XLA_FLAGS come later and win
    os.environ["XLA_FLAGS"] = f"{_CPU_COLLECTIVE_FLAGS} {os.environ.get('XLA_FLAGS', '')}".strip()
  try:
    jax.config.update("jax_num_cpu_devices", devices)
  except RuntimeError as e:
    raise UserError("config.parallel.cpu_devices must be set before JAX starts "
                    "(give it on the command line)") from e


def make_mesh(num_devices: int = 0, backend: str | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over the first `num_devices` devices of `backend` (0 = all of them, every host's;
  None = JAX's default backend)."""
  devices = jax.devices(backend)
  if num_devices:
    if num_devices > len(devices):
      raise UserError(f"config.parallel.num_devices={num_devices} but only {len(devices)} devices exist")
    devices = devices[:num_devices]
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices, axis_types=(AUTO,))


def make_trial_mesh(num_trials: int, num_devices: int = 0) -> jax.sharding.Mesh:
  """A (trial, data) mesh: trials spread over as many devices as divide their number."""
  devices = make_mesh(num_devices).devices.reshape(-1)
  trial_devices = math.gcd(num_trials, len(devices))
  return jax.make_mesh((trial_devices, len(devices) // trial_devices), (TRIAL_AXIS, DATA_AXIS),
                       devices=devices, axis_types=(AUTO, AUTO))


def check_batch_divides(global_batch: int, mesh: jax.sharding.Mesh) -> None:
  if global_batch % mesh.size:
    raise UserError(f"config.train.batch_size={global_batch} is not divisible by the "
                    f"{mesh.size} devices of the mesh")


# XLA:CPU hands convolutions, matmuls and reductions to YNNPACK by default. Its convolutions run the
# DCGAN layers 1.3-2x slower than XLA's own (Eigen) ones, so the train step keeps YNNPACK for
# matmuls and reductions only: dcgan64 0.52 -> 0.66 it/s (benchmarks/NOTES.md).
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type":
                        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


def _on_cpu(mesh: jax.sharding.Mesh) -> bool:
  return mesh.devices.flat[0].platform == "cpu"


def compiler_options(mesh: jax.sharding.Mesh) -> dict | None:
  """XLA options for programs that run on `mesh` (CPU_COMPILER_OPTIONS on CPU devices)."""
  return CPU_COMPILER_OPTIONS if _on_cpu(mesh) else None


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4   # glibc's mallopt parameters (malloc.h)


def reuse_freed_host_memory(mesh: jax.sharding.Mesh) -> None:
  """On a CPU mesh, have glibc keep the memory a step frees for the next step (process-wide).

  XLA:CPU mallocs each execution's temporary buffer afresh (39 MB for dcgan) and frees it after.
  glibc serves a block that large with a new mmap and unmaps it on free, so every step faulted in
  and zeroed ~10k pages again; dcgan ran 14% slower for it (benchmarks/NOTES.md, seventh round).
  Serving large blocks from the heap and not trimming it stops that, for ~0.2 GB more peak RSS.
  Malloc settings given in the environment (GLIBC_TUNABLES, MALLOC_*_) are left as they are.
  """
  if (not _on_cpu(mesh) or platform.libc_ver()[0] != "glibc" or "GLIBC_TUNABLES" in os.environ
      or any(name.startswith("MALLOC_") for name in os.environ)):
    return
  libc = ctypes.CDLL(None)
  libc.mallopt(_M_MMAP_MAX, 0)
  libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def data_parallel(step_fn, mesh: jax.sharding.Mesh):
  """jit(shard_map(step_fn)) with the state replicated and donated, batches split on DATA_AXIS.

  `step_fn(state, batch, key) -> (state, metrics)` is per-device code that pmeans over DATA_AXIS;
  check_vma=False keeps that contract (gradients are local until the step averages them).
  """
  mapped = jax.shard_map(step_fn, mesh=mesh, in_specs=(P(), BATCH_SPEC, P()),
                         out_specs=(P(), P()), check_vma=False)
  return jax.jit(mapped, donate_argnums=0, compiler_options=compiler_options(mesh))


def trials_parallel(step_fn, mesh: jax.sharding.Mesh):
  """data_parallel for stacked trials: the step vmapped over the leading trial axis, trials split
  over the mesh's trial axis and each trial's batch over its data axis."""
  mapped = jax.shard_map(jax.vmap(step_fn), mesh=mesh,
                         in_specs=(P(TRIAL_AXIS), TRIAL_BATCH_SPEC, P(TRIAL_AXIS)),
                         out_specs=(P(TRIAL_AXIS), P(TRIAL_AXIS)), check_vma=False)
  return jax.jit(mapped, donate_argnums=0, compiler_options=compiler_options(mesh))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def trial_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(TRIAL_AXIS))


def shard_batch(host_batch: np.ndarray, mesh: jax.sharding.Mesh, spec: P = BATCH_SPEC) -> jax.Array:
  """This host's part of the global batch -> one global array split over the data axis."""
  return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), host_batch)


def host_share(global_batch: int) -> tuple[int, int]:
  """(first example, number of examples) of the global batch that this host loads."""
  per_host = global_batch // jax.process_count()
  return jax.process_index() * per_host, per_host
