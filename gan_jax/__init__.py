"""gan_jax: generative adversarial networks in JAX/Flax."""

__version__ = "0.1.0"


class UserError(Exception):
  """A mistake the user can fix (config, data, workdir); the CLI prints it as one line."""
