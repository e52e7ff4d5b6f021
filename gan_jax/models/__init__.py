"""Model construction from the config."""

import flax.linen as nn
import ml_collections

from gan_jax import UserError
from gan_jax.models import dcgan, mlp


def build(
  config: ml_collections.ConfigDict, data_shape: tuple[int, ...], axis_name: str | None = None
) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) for samples of `data_shape`; BN syncs over `axis_name`.

  Both compute in `config.model.dtype` and return float32 (samples, logits), so losses, penalties
  and metrics stay in float32."""
  m = config.model
  if m.name == "dcgan":
    if len(data_shape) != 3:
      raise UserError(
        f"model dcgan needs images (H, W, C), the data has shape {data_shape}; "
        "use --config.model.name=mlp"
      )
    return (
      dcgan.Generator(tuple(data_shape), m.ngf, m.g_norm, axis_name, m.dtype),
      dcgan.Discriminator(tuple(data_shape), m.ndf, m.d_norm, axis_name, m.dtype),
    )
  return (
    mlp.Generator(tuple(data_shape), tuple(m.g_hidden), m.g_norm, m.g_output, axis_name, m.dtype),
    mlp.Discriminator(tuple(m.d_hidden), m.d_maxout, m.d_norm, axis_name, m.dtype),
  )
