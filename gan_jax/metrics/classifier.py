"""A small CNN trained on a dataset's train split: the feature extractor of "MNIST-FID"
(penultimate features) and of Inception Score and class coverage (logits) for MNIST-like data.
`python -m gan_jax.classifier` trains and saves one."""

import hashlib
import json
import os

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import UserError
from gan_jax.metrics.extractors import Extractor, batched
from gan_jax.pixels import to_model_range

FEATURES = 128


class CNN(nn.Module):
  """LeNet-style: conv5x5(32)-pool-conv5x5(64)-pool-dense128-dense(classes), ~4M multiply-adds per
  28x28 image, so that it trains on a 2-core CPU in minutes."""

  num_classes: int = 10

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = to_model_range(images)
    for features in (32, 64):
      x = nn.relu(nn.Conv(features, (5, 5), padding="VALID")(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(FEATURES)(x))
    logits = nn.Dense(self.num_classes)(nn.Dropout(0.3, deterministic=not train)(features))
    return features, logits


def train_classifier(
  images, labels, test_images, test_labels, epochs: int = 3, batch_size: int = 128, seed: int = 0
):
  """(params, test accuracy): Adam(1e-3) with a cosine decay, uint8 NHWC images in [0, 255]."""
  model = CNN(int(labels.max()) + 1)
  steps_per_epoch = len(images) // batch_size
  tx = optax.adam(optax.cosine_decay_schedule(1e-3, epochs * steps_per_epoch))
  key = jax.random.key(seed)
  params = jax.jit(model.init)(key, images[:1])["params"]
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y, step):
    def loss_fn(p):
      dropout_key = jax.random.fold_in(key, step)
      _, logits = model.apply({"params": p}, x, train=True, rngs={"dropout": dropout_key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  rng = np.random.default_rng(seed)
  for epoch in range(epochs):
    order = rng.permutation(len(images))
    for i in range(steps_per_epoch):
      idx = order[i * batch_size : (i + 1) * batch_size]
      params, opt_state = step(
        params, opt_state, images[idx], labels[idx], epoch * steps_per_epoch + i
      )
  _, logits = _features_of(model, params)(test_images)
  return params, float((logits.argmax(1) == test_labels).mean())


def _features_of(model: CNN, params):
  """images -> (features, logits) as float32 NumPy arrays, in batches."""
  apply = jax.jit(lambda x: model.apply({"params": params}, x))
  return lambda images: batched(apply, images, 1000)


def save(workdir: str, params, info: dict) -> dict:
  os.makedirs(workdir, exist_ok=True)
  blob = flax.serialization.to_bytes(params)
  info = {**info, "sha256": hashlib.sha256(blob).hexdigest()}
  with open(os.path.join(workdir, "classifier.msgpack"), "wb") as f:
    f.write(blob)
  with open(os.path.join(workdir, "classifier.json"), "w") as f:
    json.dump(info, f, indent=2)
  return info


def load(workdir: str) -> Extractor:
  """A saved classifier as a feature extractor (features, logits) with its info."""
  path = os.path.join(workdir, "classifier.msgpack")
  if not os.path.exists(path):
    raise UserError(f"no classifier at {workdir!r}; train one with python -m gan_jax.classifier")
  with open(os.path.join(workdir, "classifier.json")) as f:
    info = json.load(f)
  model = CNN(info["num_classes"])
  template = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, *info["image_shape"])))
  )
  with open(path, "rb") as f:
    params = flax.serialization.from_bytes(template["params"], f.read())
  return Extractor(
    _features_of(model, params),
    {
      **info,
      "resize": "none",
      "extractor": f"gan_jax.classifier ({info['dataset']}, test accuracy "
      f"{info['test_accuracy']:.4f})",
    },
  )
