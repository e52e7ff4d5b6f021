"""Test set-up: 4 virtual CPU devices, fast compiles, and the shared real data."""

import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile

# Before JAX is imported anywhere; subprocesses started by tests inherit these too.
os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault(
  "JAX_DISABLE_MOST_OPTIMIZATIONS", "1"
)  # the tiny test models are compile-bound
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Compiled programs are cached on disk for the session, so the runs a test repeats (uninterrupted
# and resumed, in-process and as a command) compile once.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="gan_jax_tests_jit_")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("GAN_JAX_SHARED_DATA", ROOT.parent / "shared" / "data"))


@contextlib.contextmanager
def optimized_compiles():
  """Full XLA optimisation, for code whose run time (not compile time) dominates."""
  import jax

  jax.config.update("jax_disable_most_optimizations", False)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", True)


def run_python(*args, timeout: int = 600) -> subprocess.CompletedProcess:
  """`python ARGS...` in the project root, as a user runs a command, with its output captured."""
  command = [sys.executable, *map(str, args)]
  return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  if not SHARED_DATA.is_dir():
    pytest.fail(f"real test data not found at {SHARED_DATA}; set GAN_JAX_SHARED_DATA")
  return SHARED_DATA


def load_experiment(name: str) -> ml_collections.ConfigDict:
  from gan_jax.config import experiment_module

  return experiment_module(ROOT / "experiments" / f"{name}.py").get_config()


def override(config: ml_collections.ConfigDict, **fields) -> ml_collections.ConfigDict:
  """override(c, **{"train.num_steps": 4}) sets dotted fields."""
  for key, value in fields.items():
    node = config
    *path, leaf = key.split(".")
    for part in path:
      node = node[part]
    node[leaf] = value
  return config


def param_count(module, x, num_classes: int = 0) -> int:
  """Parameters of a Flax module (G or D) on input x (of a class-conditional model when
  num_classes > 0), counted from shapes alone."""
  import jax
  import jax.numpy as jnp

  labels = jnp.zeros(len(x), jnp.int32) if num_classes else None
  init = lambda: module.init(jax.random.key(0), x, train=False, labels=labels)
  variables = jax.eval_shape(init)
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))


# What the tests of the toy runs were written for, rather than the PacGAN protocol's 400,000-step
# settings: Flax's initialisation, Adam's beta1 0.5, no evaluation (a test asks for one).
TOY_TEST_SETTINGS = {
  "model.init_std": 0.0,
  "optimizer.g.b1": 0.5,
  "optimizer.d.b1": 0.5,
  "eval_every": 0,
}


def tiny_toy_config(**fields) -> ml_collections.ConfigDict:
  """experiments/toy_ring.py shrunk to train in seconds."""
  c = load_experiment("toy_ring")
  override(
    c,
    **TOY_TEST_SETTINGS,
    **{
      "model.g_hidden": (32, 32),
      "model.d_hidden": (32, 32),
      "train.batch_size": 32,
      "train.num_steps": 20,
      "log_every": 2,
      "sample_every": 10,
      "checkpoint_every": 10,
      "num_samples": 100,
    },
  )
  return override(c, **fields)


# experiments/toy_ring.py shrunk, as command-line overrides; toy_command_config is the same config
TOY_ARGS = [
  "--config=experiments/toy_ring.py",
  "--config.model.g_hidden=(16,)",
  "--config.model.d_hidden=(16,)",
  "--config.train.batch_size=8",
  *(f"--config.{field}={value}" for field, value in TOY_TEST_SETTINGS.items()),
]


def toy_command_config(**fields) -> ml_collections.ConfigDict:
  """The config that `gan_jax.main` *TOY_ARGS trains, for the same run in this process."""
  c = load_experiment("toy_ring")
  override(c, **TOY_TEST_SETTINGS)
  override(c, **{"model.g_hidden": (16,), "model.d_hidden": (16,), "train.batch_size": 8})
  return override(c, **fields)


def tiny_dcgan_config(**fields) -> ml_collections.ConfigDict:
  """experiments/dcgan.py with 28x28 networks of 8 base channels."""
  c = load_experiment("dcgan")
  override(
    c,
    **{
      "model.ngf": 8,
      "model.ndf": 8,
      "model.nz": 16,
      "train.batch_size": 16,
      "train.num_steps": 6,
      "log_every": 1,
      "sample_every": 3,
      "checkpoint_every": 3,
      "num_samples": 16,
    },
  )
  return override(c, **fields)


def mnist_test_set(shared_data: pathlib.Path, count: int = 512, labelled: bool = True):
  """The first `count` real MNIST test images, with their labels when `labelled`."""
  import gzip

  from gan_jax import data

  with gzip.open(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:count]
  with gzip.open(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)[:count].astype(np.int32)
  return data.Examples(images, labels if labelled else None)


def tensorboard_events(logdir) -> event_accumulator.EventAccumulator:
  """What TensorBoard reads from the event files in `logdir`, every event kept."""
  sizes = {event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0}
  events = event_accumulator.EventAccumulator(str(logdir), size_guidance=sizes)
  events.Reload()
  return events
