"""The PyTorch reference of `train_speed.py`'s SNGAN rows: mimicry's SNGAN32 networks
(`nets/sngan/sngan_32.py`, `modules/resblocks.py`) and loop, optionally class-conditional as the
projection GAN (conditional BatchNorm in G, <embed(y), h> in D, as mimicry's cGAN-PD).

Hinge loss, Adam(2e-4, 0.0, 0.9), n_critic D updates each on a real and a freshly generated batch,
then one G update on a batch of its own; spectral norm on every D layer by
torch.nn.utils.spectral_norm (one power iteration per training forward). Imported only when torch
is installed (`pip install -e '.[bench]'`).

  python benchmarks/torch_sngan.py '{"image_shape": [32, 32, 3], "batch_size": 64, ...}' SECONDS
"""

import json
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm
from torch_dcgan import serve


def _conv(cin, cout, k, gain, sn):
  conv = nn.Conv2d(cin, cout, k, 1, k // 2)
  nn.init.xavier_uniform_(conv.weight, gain)
  return spectral_norm(conv) if sn else conv


class ConditionalBatchNorm(nn.Module):
  def __init__(self, features, num_classes):
    super().__init__()
    self.bn = nn.BatchNorm2d(features, affine=False)
    self.gain, self.bias = nn.Embedding(num_classes, features), nn.Embedding(num_classes, features)
    nn.init.normal_(self.gain.weight, 1.0, 0.02)
    nn.init.zeros_(self.bias.weight)

  def forward(self, x, y):
    return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class GBlock(nn.Module):
  def __init__(self, cin, cout, num_classes):
    super().__init__()
    self.c1, self.c2 = (
      _conv(cin, cout, 3, math.sqrt(2), False),
      _conv(cout, cout, 3, math.sqrt(2), False),
    )
    self.c_sc = _conv(cin, cout, 1, 1.0, False)
    norm = (lambda f: ConditionalBatchNorm(f, num_classes)) if num_classes else nn.BatchNorm2d
    self.b1, self.b2 = norm(cin), norm(cout)
    self.conditional = num_classes > 0

  def _norm(self, bn, x, y):
    return bn(x, y) if self.conditional else bn(x)

  def forward(self, x, y=None):
    h = F.interpolate(F.relu(self._norm(self.b1, x, y)), scale_factor=2)
    h = self.c2(F.relu(self._norm(self.b2, self.c1(h), y)))
    return h + self.c_sc(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
  def __init__(self, cin, cout, downsample, optimized=False):
    super().__init__()
    self.c1, self.c2 = (
      _conv(cin, cout, 3, math.sqrt(2), True),
      _conv(cout, cout, 3, math.sqrt(2), True),
    )
    self.learnable_sc = optimized or downsample or cin != cout
    self.c_sc = _conv(cin, cout, 1, 1.0, True) if self.learnable_sc else None
    self.downsample, self.optimized = downsample, optimized

  def forward(self, x):
    pool = (lambda h: F.avg_pool2d(h, 2)) if self.downsample else (lambda h: h)
    h = self.c1(x if self.optimized else F.relu(x))
    h = pool(self.c2(F.relu(h)))
    if self.optimized:
      return h + self.c_sc(pool(x))
    return h + (pool(self.c_sc(x)) if self.learnable_sc else x)


class Generator(nn.Module):
  def __init__(self, nz=128, ngf=256, num_classes=0):
    super().__init__()
    self.ngf = ngf
    self.l1 = nn.Linear(nz, 4 * 4 * ngf)
    nn.init.xavier_uniform_(self.l1.weight, 1.0)
    self.blocks = nn.ModuleList([GBlock(ngf, ngf, num_classes) for _ in range(3)])
    self.b5, self.c5 = nn.BatchNorm2d(ngf), _conv(ngf, 3, 3, 1.0, False)

  def forward(self, z, y=None):
    h = self.l1(z).view(len(z), self.ngf, 4, 4)
    for block in self.blocks:
      h = block(h, y)
    return torch.tanh(self.c5(F.relu(self.b5(h))))


class Discriminator(nn.Module):
  def __init__(self, ndf=128, num_classes=0):
    super().__init__()
    self.blocks = nn.Sequential(
      DBlock(3, ndf, True, optimized=True),
      DBlock(ndf, ndf, True),
      DBlock(ndf, ndf, False),
      DBlock(ndf, ndf, False),
    )
    self.l5 = nn.Linear(ndf, 1)
    nn.init.xavier_uniform_(self.l5.weight, 1.0)
    self.l5 = spectral_norm(self.l5)
    self.embed = None
    if num_classes:
      self.embed = nn.Embedding(num_classes, ndf)
      nn.init.xavier_uniform_(self.embed.weight)
      self.embed = spectral_norm(self.embed)

  def forward(self, x, y=None):
    h = torch.sum(F.relu(self.blocks(x)), dim=(2, 3))
    out = self.l5(h).view(-1)
    if self.embed is not None:
      out = out + torch.sum(self.embed(y) * h, dim=1)
    return out


def make_step(
  image_shape, batch_size=64, nz=128, ngf=256, ndf=128, n_critic=5, num_classes=0, seed=0
):
  """step(real) -> (d_loss, g_loss), one training iteration; real: float (N, C, H, W) in [-1, 1]
  (its labels, for the conditional GAN, are drawn at random: the speed is the same)."""
  torch.manual_seed(seed)
  net_g, net_d = Generator(nz, ngf, num_classes), Discriminator(ndf, num_classes)
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.0, 0.9))
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.0, 0.9))
  labels = lambda: torch.randint(0, num_classes, (batch_size,)) if num_classes else None

  def step(real):
    for _ in range(n_critic):
      net_d.zero_grad()
      y_real, y_fake = labels(), labels()
      with torch.no_grad():
        fake = net_g(torch.randn(batch_size, nz), y_fake)
      d_loss = F.relu(1.0 - net_d(real, y_real)).mean() + F.relu(1.0 + net_d(fake, y_fake)).mean()
      d_loss.backward()
      opt_d.step()
    net_g.zero_grad()
    y_fake = labels()
    g_loss = -net_d(net_g(torch.randn(batch_size, nz), y_fake), y_fake).mean()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()

  return step


if __name__ == "__main__":
  serve(json.loads(sys.argv[1]), float(sys.argv[2]), make_step)
