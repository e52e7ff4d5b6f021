"""Meshes and shardings: a 1-D data mesh for one run, a (trial, data) mesh for stacked trials, and
the per-device step mapped over either."""

import functools
import math

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import UserError, cpu
from gan_jax.train_step import DATA_AXIS

# Shardings are given explicitly where they matter (shard_map specs, device_put); elsewhere, such
# as slicing one trial out of a stacked state, XLA may choose.
AUTO = jax.sharding.AxisType.Auto
TRIAL_AXIS = "trial"


def initialize_multihost(
  coordinator: str = "", num_processes: int = 0, process_id: int = -1, timeout_s: int = 60
) -> None:
  """Join a multi-host run: the coordinator and process ids come from the cluster's environment
  (SLURM, Kubernetes, Cloud TPU...) unless given. A process that dies is noticed by the others
  within `timeout_s` (JAX's heartbeat)."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts talk over TCP
  given = dict(
    coordinator_address=coordinator or None,
    num_processes=num_processes or None,
    process_id=process_id if process_id >= 0 else None,
  )
  jax.distributed.initialize(**given, heartbeat_timeout_seconds=timeout_s)


def make_mesh(num_devices: int = 0, backend: str | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over the first `num_devices` devices of `backend` (0 = all of them, every host's;
  None = JAX's default backend)."""
  devices = jax.devices(backend)
  if num_devices:
    if num_devices > len(devices):
      raise UserError(
        f"config.parallel.num_devices={num_devices} but only {len(devices)} devices exist"
      )
    devices = devices[:num_devices]
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices, axis_types=(AUTO,))


def make_trial_mesh(num_trials: int, num_devices: int = 0) -> jax.sharding.Mesh:
  """A (trial, data) mesh: trials spread over as many devices as divide their number."""
  devices = make_mesh(num_devices).devices.reshape(-1)
  trial_devices = math.gcd(num_trials, len(devices))
  return jax.make_mesh(
    (trial_devices, len(devices) // trial_devices),
    (TRIAL_AXIS, DATA_AXIS),
    devices=devices,
    axis_types=(AUTO, AUTO),
  )


def stacks_trials(mesh: jax.sharding.Mesh) -> bool:
  return TRIAL_AXIS in mesh.axis_names


def check_batch_divides(global_batch: int, mesh: jax.sharding.Mesh) -> None:
  if global_batch % mesh.shape[DATA_AXIS]:
    raise UserError(
      f"config.train.batch_size={global_batch} is not divisible by the "
      f"{mesh.shape[DATA_AXIS]} devices of the mesh's data axis"
    )


def state_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Replicated; stacked trials split over the trial axis."""
  return NamedSharding(mesh, P(TRIAL_AXIS) if stacks_trials(mesh) else P())


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Batches are (n_critic, global_batch, ...), stacked ones (trials, n_critic, global_batch, ...);
  each batch is split over the data axis."""
  return NamedSharding(
    mesh, P(TRIAL_AXIS, None, DATA_AXIS) if stacks_trials(mesh) else P(None, DATA_AXIS)
  )


def parallelize(step_fn, mesh: jax.sharding.Mesh):
  """jit(shard_map(step_fn)) with the state donated and batches split on DATA_AXIS; on a trial
  mesh the step is vmapped over the leading trial axis, which is split over TRIAL_AXIS.

  `step_fn(state, batch, key) -> (state, metrics)` is per-device code that pmeans over DATA_AXIS;
  check_vma=False keeps that contract (gradients are local until the step averages them).
  """
  state = state_sharding(mesh).spec
  if stacks_trials(mesh):
    step_fn = jax.vmap(step_fn)
  mapped = jax.shard_map(
    step_fn,
    mesh=mesh,
    in_specs=(state, batch_sharding(mesh).spec, state),
    out_specs=(state, state),
    check_vma=False,
  )
  return jax.jit(mapped, donate_argnums=0, compiler_options=cpu.compiler_options(mesh))


def shard_batch(host_batch, mesh: jax.sharding.Mesh):
  """This host's part of the global batch (an array, or examples and labels) -> global arrays
  split over the data axis."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda b: jax.make_array_from_process_local_data(sharding, b), host_batch)


def stacked_share(mesh: jax.sharding.Mesh, num_trials: int, global_batch: int):
  """(trials, first example, number of examples) of a stacked batch that this host loads: the
  trials and the part of each trial's batch that its devices hold on a (trial, data) mesh."""
  shape = (num_trials, 1, global_batch)
  held = batch_sharding(mesh).addressable_devices_indices_map(shape).values()

  def span(axis: int) -> tuple[int, int]:
    bounds = [index[axis].indices(shape[axis])[:2] for index in held]
    return min(start for start, _ in bounds), max(stop for _, stop in bounds)

  (first_trial, end_trial), (first, end) = span(0), span(2)
  return range(first_trial, end_trial), first, end - first


def to_host(tree):
  """Device arrays -> NumPy arrays of their whole value on this host. Arrays split over several
  processes' devices are gathered first: a collective, which every process calls."""
  split = [
    x for x in jax.tree.leaves(tree) if not (x.is_fully_addressable or x.is_fully_replicated)
  ]
  if not split:
    return jax.device_get(tree)
  tree = _replicate(split[0].sharding.mesh)(tree)
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


@functools.cache
def _replicate(mesh: jax.sharding.Mesh):
  return jax.jit(lambda tree: tree, out_shardings=NamedSharding(mesh, P()))


def host_share(global_batch: int) -> tuple[int, int]:
  """(first example, number of examples) of the global batch that this host loads."""
  per_host = global_batch // jax.process_count()
  return jax.process_index() * per_host, per_host
