"""Model construction from the config."""

import flax.linen as nn
import ml_collections

from gan_jax import UserError
from gan_jax.models import dcgan, mlp, resnet, tf_dcgan


def build(
  config: ml_collections.ConfigDict, data_shape: tuple[int, ...], axis_name: str | None = None
) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) for samples of `data_shape`; BN syncs over `axis_name`.

  Both compute in `config.model.dtype` and return float32 (samples, logits), so losses, penalties
  and metrics stay in float32."""
  m = config.model
  shape = tuple(data_shape)
  if m.name in ("dcgan", "tf_dcgan", "resnet") and len(shape) != 3:
    raise UserError(
      f"model {m.name} needs images (H, W, C), the data has shape {shape}; "
      "use --config.model.name=mlp"
    )
  g_sn, d_sn, classes = m.g_spectral_norm, m.d_spectral_norm, m.num_classes
  if m.name == "dcgan":
    return (
      dcgan.Generator(shape, m.ngf, m.g_norm, axis_name, m.dtype, classes, g_sn),
      dcgan.Discriminator(
        shape, m.ndf, m.d_norm, axis_name, m.dtype, classes, m.conditioning, d_sn
      ),
    )
  if m.name == "tf_dcgan":
    return (
      tf_dcgan.Generator(shape, m.ngf, m.g_norm, axis_name, m.dtype),
      tf_dcgan.Discriminator(shape, m.ndf, m.d_norm, axis_name, m.dtype),
    )
  if m.name == "resnet":
    return (
      resnet.Generator(shape, m.ngf, classes, g_sn, axis_name, m.dtype),
      resnet.Discriminator(shape, m.ndf, classes, m.conditioning, d_sn, m.dtype),
    )
  return (
    mlp.Generator(
      shape, tuple(m.g_hidden), m.g_norm, m.g_output, axis_name, m.dtype, g_sn, m.init_std
    ),
    mlp.Discriminator(
      tuple(m.d_hidden), m.d_maxout, m.d_norm, axis_name, m.dtype, d_sn, m.init_std
    ),
  )
