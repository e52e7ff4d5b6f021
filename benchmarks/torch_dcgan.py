"""The PyTorch reference of `train_speed.py`: pytorch/examples `dcgan/main.py`'s networks and loop.

Same layers as gan_jax's DCGAN for the same image shape (base * 2**k, base 4 or 7), the
non-saturating loss with Adam(2e-4, 0.5, 0.999), one D update on a real and a generated batch, then
one G update through D on that generated batch. Imported only when torch is installed
(`pip install -e '.[bench]'`).

Run as a script, it serves `train_speed.py`: it times a block of iterations each time a line
arrives on stdin and answers with the rate, in its own process, so that PyTorch runs with its own
stock allocator settings while the two frameworks' blocks still alternate.
  python benchmarks/torch_dcgan.py '{"image_shape": [28, 28, 1], "batch_size": 64, ...}' SECONDS
"""

import json
import math
import sys
import time

import torch
from torch import nn

from gan_jax.models.dcgan import resolution_factors


def _init(m):
  # Radford et al., as pytorch/examples: conv weights N(0, 0.02), BN weight N(1, 0.02), bias 0.
  if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(m.weight, 0.0, 0.02)
  elif isinstance(m, nn.BatchNorm2d):
    nn.init.normal_(m.weight, 1.0, 0.02)
    nn.init.zeros_(m.bias)


class _Reshape(nn.Module):
  def __init__(self, *shape):
    super().__init__()
    self.shape = shape

  def forward(self, x):
    return x.reshape(x.shape[0], *self.shape)


def generator(image_shape, nz=100, ngf=64):
  size, _, channels = image_shape
  base, k = resolution_factors(size)
  f = ngf * 2 ** (k - 1)
  if base == 4:  # pytorch/examples: ConvTranspose2d(nz, f, 4, 1, 0) on the 1x1 noise
    layers = [_Reshape(nz, 1, 1), nn.ConvTranspose2d(nz, f, 4, 1, 0, bias=False)]
  else:
    layers = [nn.Linear(nz, base * base * f, bias=False), _Reshape(f, base, base)]
  layers += [nn.BatchNorm2d(f), nn.ReLU(True)]
  for _ in range(k - 1):
    layers += [
      nn.ConvTranspose2d(f, f // 2, 4, 2, 1, bias=False),
      nn.BatchNorm2d(f // 2),
      nn.ReLU(True),
    ]
    f //= 2
  layers += [nn.ConvTranspose2d(f, channels, 4, 2, 1, bias=False), nn.Tanh()]
  return nn.Sequential(*layers).apply(_init)


def discriminator(image_shape, ndf=64):
  size, _, channels = image_shape
  base, k = resolution_factors(size)
  layers, f = [], channels
  for i in range(k):
    layers.append(nn.Conv2d(f, ndf * 2**i, 4, 2, 1, bias=False))
    f = ndf * 2**i
    if i > 0:
      layers.append(nn.BatchNorm2d(f))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
  if base == 4:  # pytorch/examples: Conv2d(f, 1, 4, 1, 0) over the 4x4 map
    layers += [nn.Conv2d(f, 1, 4, 1, 0, bias=False), nn.Flatten()]
  else:
    layers += [nn.Flatten(), nn.Linear(base * base * f, 1, bias=False)]
  return nn.Sequential(*layers).apply(_init)


def make_step(image_shape, batch_size=64, nz=100, ngf=64, ndf=64, seed=0):
  """step(real) -> (d_loss, g_loss), one training iteration; real: float (N, C, H, W) in [-1, 1]."""
  torch.manual_seed(seed)
  net_g, net_d = generator(image_shape, nz, ngf), discriminator(image_shape, ndf)
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)

  def step(real):
    net_d.zero_grad()
    fake = net_g(torch.randn(batch_size, nz))
    d_loss = bce(net_d(real).view(-1), ones) + bce(net_d(fake.detach()).view(-1), zeros)
    d_loss.backward()
    opt_d.step()
    net_g.zero_grad()
    g_loss = bce(net_d(fake).view(-1), ones)
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()

  return step


def random_batches(image_shape, batch_size, count=4, seed=0):
  """`count` batches of uniform images in [-1, 1], NCHW."""
  size, _, channels = image_shape
  g = torch.Generator().manual_seed(seed)
  return [torch.rand(batch_size, channels, size, size, generator=g) * 2 - 1 for _ in range(count)]


def serve(step_args: dict, seconds: float, make=make_step) -> None:
  """Print "ready", then for each line read: run a block of about `seconds`, print its it/s.
  The step is `make(**step_args)`."""
  step = make(**step_args)
  batches = random_batches(step_args["image_shape"], step_args["batch_size"])
  for b in batches[:2]:
    step(b)  # warm-up
  tic = time.perf_counter()
  step(batches[0])
  n = max(2, math.ceil(seconds / (time.perf_counter() - tic)))
  print("ready", flush=True)
  for _ in sys.stdin:
    tic = time.perf_counter()
    for i in range(n):
      step(batches[i % len(batches)])
    print(n / (time.perf_counter() - tic), flush=True)


if __name__ == "__main__":
  serve(json.loads(sys.argv[1]), float(sys.argv[2]))
