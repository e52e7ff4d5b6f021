"""pytorch/examples `dcgan/main.py`: 64x64x3 images, nz=100, ngf=ndf=64, batch 64,
non-saturating loss, Adam(2e-4, 0.5).

Data: CIFAR-10 upsampled to 64x64 from a local .npz (`images` uint8 NHWC), e.g. the test split:
--config.data.path=../shared/data/cifar10/test.npz, or any folder of PNGs (data.source=folder)."""

from gan_jax.config import base_config


def get_config():
  c = base_config()
  c.data.source = "npz"
  c.data.path = "../shared/data/cifar10/test.npz"
  c.data.image_size = 64
  c.model.nz = 100
  c.model.ngf = c.model.ndf = 64
  c.train.batch_size = 64
  c.train.num_steps = 20000
  return c
