"""FID Inception-v3: pytorch-fid's parameter layout and the forward pass's shapes (random weights:
the published weights are a download, which tests never make)."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.metrics import extractors
from gan_jax.models import inception

from conftest import optimized_compiles


@pytest.fixture(scope="module")
def variables():
  model = inception.FIDInceptionV3()
  return jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 75, 75, 3)))


def test_parameter_layout_is_pytorch_fids(variables):
  state_dict = inception.to_torch_state_dict(variables)
  # names and shapes of pytorch-fid's FIDInceptionA/C/E network (torch OIHW)
  assert state_dict["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  assert state_dict["Mixed_5b.branch_pool.conv.weight"].shape == (32, 192, 1, 1)
  assert state_dict["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
  assert state_dict["Mixed_7c.branch3x3dbl_3b.bn.running_var"].shape == (384,)
  assert state_dict["fc.weight"].shape == (1008, 2048)
  assert len(state_dict) == 94 * 5 + 2  # 94 conv+BN units (weight, bn weight/bias/mean/var) + fc
  total = sum(v.size for k, v in state_dict.items() if "running" not in k)
  # torchvision inception_v3: 27,161,264 with its aux head (3,326,696) and 1000-way fc (2,049,000)
  assert total == 27_161_264 - 3_326_696 - 2_049_000 + 2048 * 1008 + 1008


def test_weights_load_from_pth_style_files(variables, tmp_path):
  state_dict = inception.to_torch_state_dict(variables)
  path = tmp_path / "weights.pkl"
  with open(path, "wb") as f:
    pickle.dump(state_dict, f)
  loaded = extractors.load_inception_variables(str(path))
  jax.tree.map(np.testing.assert_array_equal, loaded, jax.device_get(variables))
  np.savez(tmp_path / "weights.npz", **state_dict)
  jax.tree.map(
    np.testing.assert_array_equal,
    extractors.load_inception_variables(str(tmp_path / "weights.npz")),
    jax.device_get(variables),
  )
  del state_dict["fc.bias"]
  with open(path, "wb") as f:
    pickle.dump(state_dict, f)
  with pytest.raises(Exception, match="layout"):
    extractors.load_inception_variables(str(path))


def test_weights_load_from_the_published_pth_with_torch(variables, tmp_path):
  torch = pytest.importorskip("torch")
  state_dict = {
    k: torch.from_numpy(np.array(v)) for k, v in inception.to_torch_state_dict(variables).items()
  }
  state_dict["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)  # as torch BN saves it
  torch.save(state_dict, tmp_path / "pt_inception.pth")
  jax.tree.map(
    np.testing.assert_array_equal,
    extractors.load_inception_variables(str(tmp_path / "pt_inception.pth")),
    jax.device_get(variables),
  )


def _merged(a, b):
  """Nested dicts a and b as one (b's leaves added beside a's)."""
  out = dict(a)
  for k, v in b.items():
    out[k] = _merged(out.get(k, {}), v) if isinstance(v, dict) else np.asarray(v)
  return out


def test_weights_load_from_jax_fid_pickle(variables, tmp_path):
  path = tmp_path / "inception_v3_weights_fid.pickle"
  with open(path, "wb") as f:
    # jax-fid's layout: one nested dict, each unit's BN statistics beside its parameters
    pickle.dump(
      _merged(jax.device_get(variables["params"]), jax.device_get(variables["batch_stats"])), f
    )
  jax.tree.map(
    np.testing.assert_array_equal,
    extractors.load_inception_variables(str(path)),
    jax.device_get(variables),
  )


def test_forward_resizes_to_299_and_returns_pool3_and_unbiased_logits(variables, tmp_path):
  """The Inception Score's logits leave out the fc bias (OpenAI's IS code; torch-fidelity's
  logits_unbiased): a bias in the weights file does not reach them."""
  path = tmp_path / "weights.npz"
  state_dict = inception.to_torch_state_dict(variables)
  state_dict["fc.bias"] = np.full_like(state_dict["fc.bias"], 7.0)
  np.savez(path, **state_dict)
  extractor = extractors.inception(str(path))
  with optimized_compiles():
    features, logits = extractor.features_of(np.zeros((2, 28, 28, 1), np.uint8))
  assert features.shape == (2, 2048) and logits.shape == (2, 1008)
  np.testing.assert_allclose(logits, features @ state_dict["fc.weight"].T, rtol=1e-4, atol=1e-4)
  assert np.isfinite(features).all() and (features >= 0).all()  # mean of ReLU outputs
  assert extractor.info["resize"] == "bilinear to 299x299" and len(extractor.info["sha256"]) == 64
