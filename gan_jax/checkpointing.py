"""Orbax checkpoints of the whole TrainState. The data position and the RNG are functions of the
step, so restoring the state restores them too."""

import os

import jax
import orbax.checkpoint as ocp

from gan_jax import parallel


def manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  """The checkpoints of a run: saved by every process of a multi-host run together, or within
  parallel.processes_apart by this process alone (its barriers its own)."""
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  alone = {}
  if _alone():
    me = jax.process_index()
    alone["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
      primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"process_{me}"
    )
    os.makedirs(directory, exist_ok=True)  # Orbax creates it only for all processes together
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not alone, **alone)
  return ocp.CheckpointManager(directory, options=options)


def _alone() -> bool:
  """Whether this process checkpoints its own runs within a multi-host job: there Orbax takes
  only arrays of the whole job, so the state goes through host memory as NumPy arrays."""
  return parallel.apart() and jax.process_count() > 1


def save(mngr: ocp.CheckpointManager, state) -> None:
  step = int(jax.device_get(state.step))
  mngr.save(step, args=ocp.args.StandardSave(jax.device_get(state) if _alone() else state))


def restore(mngr: ocp.CheckpointManager, like, step: int | None = None):
  """The checkpoint at `step` (default: latest) shaped and sharded like `like`; None if none."""
  step = mngr.latest_step() if step is None else step
  if step is None:
    return None
  if _alone():
    restored = mngr.restore(step, args=ocp.args.StandardRestore(jax.device_get(like)))
    return jax.tree.map(lambda x, ref: jax.device_put(x, ref.sharding), restored, like)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
