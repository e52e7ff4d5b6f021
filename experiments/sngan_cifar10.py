"""SNGAN (Miyato et al. 2018) on CIFAR-10 32x32: the ResNet G (256 channels) and D (128, spectral
norm on every layer), hinge loss, 5 D updates per G update, Adam(2e-4, 0.0, 0.9), batch 64, both
learning rates decayed linearly to 0 (mimicry's SNGAN32 set-up; 100k steps in the paper).

The data defaults to the CIFAR-10 test split in ../shared/data/cifar10/test.npz; point
--config.data.path at a train split of your own (an .npz of uint8 `images`), or use tfds:
--config.data.source=tfds --config.data.name=cifar10.
"""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.data.source = "npz"
  c.data.name = "cifar10"
  c.data.path = "../shared/data/cifar10/test.npz"
  c.loss = "hinge"
  c.n_critic = 5
  c.model.name = "resnet"
  c.model.nz = 128
  c.model.ngf = 256
  c.model.ndf = 128
  c.model.d_spectral_norm = True
  for opt in (c.optimizer.g, c.optimizer.d):
    opt.lr, opt.b1, opt.b2 = 2e-4, 0.0, 0.9
    opt.schedule = "linear"
  c.train.batch_size = 64
  c.train.num_steps = 100_000
  c.log_every = 50
  c.sample_every = 1000
  c.checkpoint_every = 1000
  return c
