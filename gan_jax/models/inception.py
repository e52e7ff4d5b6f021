"""Inception-v3 as used by the FID protocol: the TF 2015-12-05 graph as ported by pytorch-fid
(`FIDInceptionA/C/E`: average pools that exclude padding, a max pool in the last block), in Flax.

Module and parameter names follow pytorch-fid's state dict, so `from_torch_state_dict` maps the
published `pt_inception-2015-12-05-*.pth` weights one to one. Input: images in [-1, 1], any size;
they are resized to 299x299 bilinearly (no antialiasing, as torch's F.interpolate does).
Output: (pool3 features (N, 2048), logits (N, 1008)).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class BasicConv2d(nn.Module):
  features: int
  kernel: tuple[int, int] = (1, 1)
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    pad = [(self.padding[0],) * 2, (self.padding[1],) * 2]
    x = nn.Conv(self.features, self.kernel, self.strides, pad, use_bias=False, name="conv")(x)
    return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x))


def _avg_pool(x):
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, strides=2, padding="VALID"):
  return nn.max_pool(x, (3, 3), (strides, strides), padding)


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, name="branch1x1")(x)
    b5 = BasicConv2d(64, (5, 5), padding=(2, 2), name="branch5x5_2")(
      BasicConv2d(48, name="branch5x5_1")(x)
    )
    b3 = BasicConv2d(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, name="branch_pool")(_avg_pool(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = BasicConv2d(64, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b1 = BasicConv2d(192, name="branch1x1")(x)
    b7 = BasicConv2d(c, name="branch7x7_1")(x)
    b7 = BasicConv2d(c, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, name="branch_pool")(_avg_pool(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  pool: str  # "avg" in Mixed_7b, "max" in Mixed_7c (a quirk of the TF graph)

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, name="branch1x1")(x)
    b3 = BasicConv2d(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate(
      [
        BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
      ],
      -1,
    )
    bd = BasicConv2d(448, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
      [
        BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
      ],
      -1,
    )
    pooled = _avg_pool(x) if self.pool == "avg" else _max_pool(x, 1, ((1, 1), (1, 1)))
    bp = BasicConv2d(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  @nn.compact
  def __call__(self, images):
    x = jax.image.resize(
      images, (images.shape[0], 299, 299, images.shape[-1]), "bilinear", antialias=False
    )
    if x.shape[-1] == 1:
      x = jnp.tile(x, (1, 1, 1, 3))
    x = BasicConv2d(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool(x)
    x = BasicConv2d(80, name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    features = jnp.mean(x, axis=(1, 2))
    return features, nn.Dense(1008, name="fc")(features)


def from_torch_state_dict(state_dict: dict, template: dict) -> dict:
  """Flax variables {'params', 'batch_stats'} from pytorch-fid's state dict (name -> array)."""
  params, stats = {}, {}
  for name, value in state_dict.items():
    *path, leaf = name.split(".")
    value = np.asarray(value, np.float32)
    if leaf == "num_batches_tracked":
      continue
    if path[-1] == "conv" and leaf == "weight":
      target, leaf, value = params, "kernel", value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif path[-1] == "fc":
      target, leaf, value = (
        params,
        {"weight": "kernel", "bias": "bias"}[leaf],
        (value.T if leaf == "weight" else value),
      )
    elif leaf in ("running_mean", "running_var"):
      target, leaf = stats, {"running_mean": "mean", "running_var": "var"}[leaf]
    else:
      target, leaf = params, {"weight": "scale", "bias": "bias"}[leaf]
    node = target
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = value
  variables = {"params": params, "batch_stats": stats}
  expected = jax.tree.map(lambda x: x.shape, template)
  got = jax.tree.map(lambda x: x.shape, variables)
  if expected != got:
    raise ValueError("the weights do not have pytorch-fid's Inception-v3 layout")
  return variables


def from_jax_fid(params_dict: dict, template: dict) -> dict:
  """Flax variables from jax-fid's pickled weights (matthias-wright/jax-fid): nested dicts by
  pytorch-fid's module names, each unit
  {'conv': {'kernel'}, 'bn': {'scale', 'bias', 'mean', 'var'}},
  and 'fc': {'kernel', 'bias'}."""

  def convert(node, path):
    if "conv" in node and "bn" in node:  # one BasicConv2d
      bn = node["bn"]
      return (
        {"conv": {"kernel": node["conv"]["kernel"]}, "bn": {k: bn[k] for k in ("scale", "bias")}},
        {"bn": {k: bn[k] for k in ("mean", "var")}},
      )
    params, stats = {}, {}
    for name, child in node.items():
      if name == "fc" and not path:
        params["fc"] = {k: child[k] for k in ("kernel", "bias")}
      elif isinstance(child, dict):
        params[name], child_stats = convert(child, path + [name])
        if child_stats:
          stats[name] = child_stats
    return params, stats

  try:
    params, stats = convert(params_dict, [])
  except KeyError as e:
    raise ValueError(f"the weights lack {e} of jax-fid's Inception-v3 layout") from None
  variables = jax.tree.map(
    lambda x: np.asarray(x, np.float32), {"params": params, "batch_stats": stats}
  )
  if jax.tree.map(lambda x: x.shape, template) != jax.tree.map(lambda x: x.shape, variables):
    raise ValueError(
      "the weights do not have jax-fid's Inception-v3 layout (an fc of 1008 classes, "
      "as the TF graph's, is needed)"
    )
  return variables


def to_torch_state_dict(variables: dict) -> dict:
  """The inverse of from_torch_state_dict (for tests and for exporting)."""
  out = {}
  for collection, tree in variables.items():
    for path, value in jax.tree_util.tree_flatten_with_path(tree)[0]:
      names = [p.key for p in path]
      *prefix, leaf = names
      value = np.asarray(value)
      if leaf == "kernel" and prefix[-1] == "conv":
        leaf, value = "weight", value.transpose(3, 2, 0, 1)
      elif leaf == "kernel":
        leaf, value = "weight", value.T
      elif collection == "batch_stats":
        leaf = {"mean": "running_mean", "var": "running_var"}[leaf]
      elif leaf == "scale":
        leaf = "weight"
      out[".".join(prefix + [leaf])] = value
  return out
