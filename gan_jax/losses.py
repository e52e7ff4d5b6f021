"""The GAN family of losses, on D's raw outputs (logits for the cross-entropy games, critic values
for the Wasserstein ones), and the gradient penalties. Each loss is a mean over the batch."""

import jax
import jax.numpy as jnp


def _mean_softplus(x):
  return jnp.mean(jax.nn.softplus(x))


# -log D(x) = softplus(-l) and -log(1 - D(x)) = softplus(l) for D = sigmoid(l): stable for any
# logit.
def _cross_entropy_d(real, fake):
  """D maximises log D(x) + log(1 - D(G(z)))."""
  return _mean_softplus(-real) + _mean_softplus(fake)


def _minimax_g(fake):
  """Goodfellow et al.'s saturating game: G minimises log(1 - D(G(z)))."""
  return -_mean_softplus(fake)


def _non_saturating_g(fake):
  """G maximises log D(G(z)) instead (the DCGAN default)."""
  return _mean_softplus(-fake)


def _wasserstein_d(real, fake):
  """The WGAN critic maximises E[D(x)] - E[D(G(z))]."""
  return jnp.mean(fake) - jnp.mean(real)


def _hinge_d(real, fake):
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def _critic_g(fake):
  """G maximises E[D(G(z))] (Wasserstein and hinge)."""
  return -jnp.mean(fake)


# LSGAN (Mao et al.) with targets a=0, b=c=1.
def _least_squares_d(real, fake):
  return 0.5 * jnp.mean((real - 1.0) ** 2) + 0.5 * jnp.mean(fake**2)


def _least_squares_g(fake):
  return 0.5 * jnp.mean((fake - 1.0) ** 2)


# loss name -> (D's loss of (real outputs, fake outputs), G's loss of fake outputs)
LOSSES = {
  "minimax": (_cross_entropy_d, _minimax_g),
  "non_saturating": (_cross_entropy_d, _non_saturating_g),
  "wasserstein": (_wasserstein_d, _critic_g),
  "wgan_gp": (_wasserstein_d, _critic_g),
  "hinge": (_hinge_d, _critic_g),
  "least_squares": (_least_squares_d, _least_squares_g),
}


def discriminator_loss(kind: str, real_out, fake_out):
  return LOSSES[kind][0](real_out, fake_out)


def generator_loss(kind: str, fake_out):
  return LOSSES[kind][1](fake_out)


def is_probabilistic(kind: str) -> bool:
  """True when D's outputs are logits of a probability (reported as sigmoid)."""
  return kind in ("minimax", "non_saturating")


def _input_grad_squared_norms(d_fn, x):
  grads = jax.grad(lambda x_: jnp.sum(d_fn(x_)))(x)
  return jnp.sum(grads.reshape(x.shape[0], -1) ** 2, axis=1)


def _safe_sqrt(x):
  """sqrt with a finite gradient (0) at 0, where jnp.sqrt's is infinite and times 0 gives NaN."""
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def gradient_penalty(d_fn, real, fake, eps):
  """Gulrajani et al.: E[(||grad D(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z),
  eps ~ U[0, 1]."""
  eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
  x_hat = eps * real + (1.0 - eps) * fake
  return jnp.mean((_safe_sqrt(_input_grad_squared_norms(d_fn, x_hat)) - 1.0) ** 2)


def r1_penalty(d_fn, real):
  """Mescheder et al.: E||grad D(x)||^2 on real data (the caller scales by gamma / 2)."""
  return jnp.mean(_input_grad_squared_norms(d_fn, real))
