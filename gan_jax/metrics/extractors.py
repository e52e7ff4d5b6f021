"""Feature extractors for the image metrics: `features_of(uint8 NHWC images) -> (features, logits)`
plus `info`, which says what it is, its weights' sha256 and how images are resized."""

import hashlib
import pickle
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import UserError
from gan_jax.models import inception as inception_lib
from gan_jax.pixels import to_model_range


class Extractor(NamedTuple):
  features_of: Callable
  info: dict


def batched(apply, images, batch_size: int = 500):
  """(features, logits) float32 NumPy arrays of `apply` over `images` in batches."""
  outputs = [
    jax.device_get(apply(images[i : i + batch_size])) for i in range(0, len(images), batch_size)
  ]
  return tuple(np.concatenate([o[j] for o in outputs]).astype(np.float32) for j in range(2))


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def load_inception_variables(path: str) -> dict:
  """The FID Inception's weights from a local file: pytorch-fid's published .pth (needs torch), its
  state dict as a pickle or .npz of name -> array, or jax-fid's pickle of nested dicts."""
  if path.endswith(".pth"):
    try:
      import torch
    except ImportError as e:
      raise UserError(
        f"reading {path} needs torch (pip install -e .[bench]); or convert it to "
        ".npz: np.savez(out, **{k: v.numpy() for k, v in torch.load(path).items()})"
      ) from e
    state_dict = {k: v.numpy() for k, v in torch.load(path, map_location="cpu").items()}
  elif path.endswith(".npz"):
    with np.load(path) as f:
      state_dict = {k: f[k] for k in f.files}
  else:
    with open(path, "rb") as f:
      state_dict = pickle.load(f)
  template = jax.eval_shape(
    lambda: inception_lib.FIDInceptionV3().init(jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
  )
  if any(isinstance(v, dict) for v in state_dict.values()):
    return inception_lib.from_jax_fid(state_dict, template)
  return inception_lib.from_torch_state_dict(state_dict, template)


def inception(weights_path: str) -> Extractor:
  """The FID protocol's Inception-v3; images go in as [-1, 1] and are resized to 299 bilinearly."""
  try:
    variables = load_inception_variables(weights_path)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot load Inception weights from {weights_path!r}: {e}") from e
  model = inception_lib.FIDInceptionV3()
  fc_kernel = variables["params"]["fc"]["kernel"]

  @jax.jit
  def apply(images):
    features, _ = model.apply(variables, to_model_range(images))
    # The Inception Score's logits leave out the fc bias, as OpenAI's code and torch-fidelity's
    # logits_unbiased do.
    return features, features @ fc_kernel

  info = {
    "extractor": "inception-v3 (FID protocol, pytorch-fid port of the TF 2015-12-05 graph)",
    "sha256": _sha256(weights_path),
    "resize": "bilinear to 299x299",
  }
  return Extractor(lambda images: batched(apply, images), info)
