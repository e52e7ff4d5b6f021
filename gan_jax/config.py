"""The base config every experiment starts from, and its validation."""

import importlib.util
import types

import ml_collections

from gan_jax import UserError

LOSSES = ("minimax", "non_saturating", "wasserstein", "wgan_gp", "hinge", "least_squares")
MODELS = ("dcgan", "tf_dcgan", "resnet", "mlp")
NOISES = ("normal", "uniform")
CONDITIONINGS = ("projection", "acgan")
SCHEDULES = ("constant", "linear")
NORMS = ("batch", "layer", "none")
DTYPES = ("float32", "bfloat16")
OPTIMIZERS = ("adam", "rmsprop")
SOURCES = ("tfds", "npz", "folder", "toy", "stacked_mnist")
TOY_DATASETS = ("ring8", "grid25")
AUGMENT_OPS = ("color", "translation", "cutout")  # DiffAugment's (gan_jax.augment)

# Fields that may change when a run is resumed: how long and how often, not what is trained.
RESUMABLE_CHANGES = (
  "train.num_steps",
  "log_every",
  "sample_every",
  "checkpoint_every",
  "keep_checkpoints",
  "data.manual_dir",
  "data.data_dir",
  "data.download",
  "data.path",
  "parallel.num_devices",
  "parallel.cpu_devices",
  "parallel.cpu_async_dispatch",
  "eval_every",
  "eval_samples",
  "eval_classifier",
  "sweep.metric",
  "sweep.goal",
)


def experiment_module(path) -> types.ModuleType:
  """An experiment file (experiments/*.py) loaded as a module: get_config(), maybe get_sweep()."""
  spec = importlib.util.spec_from_file_location("experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _optimizer(lr: float, b1: float, b2: float) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
    dict(name="adam", lr=lr, b1=b1, b2=b2, rms_decay=0.99, schedule="constant")
  )


def base_config() -> ml_collections.ConfigDict:
  """DCGAN on MNIST with the non-saturating loss; experiments override from here."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.loss = "non_saturating"
  c.n_critic = 1  # D updates per G update
  c.g_steps = 1  # G updates per step, on the same noise (PacGAN's Stacked-MNIST code runs 2)
  c.clip_value = 0.0  # WGAN weight clipping of D's parameters; 0 = off
  c.gp_weight = 10.0  # lambda of the WGAN-GP penalty (used by loss=wgan_gp only)
  c.r1_gamma = 0.0  # R1 penalty on real data, gamma/2 * E||grad D(x)||^2; 0 = off
  c.ema_decay = 0.0  # EMA of G's weights, used for samples; 0 = off
  c.acgan_weight = 1.0  # weight of ACGAN's class cross-entropy (model.conditioning=acgan)
  c.pac = 1  # PacGAN: D judges packs of this many samples (train.batch_size counts packs)
  # In training, G's BatchNorm takes each pack member's samples as a batch of its own, as the
  # authors' Stacked-MNIST code (one G call per member); False: all of a step's samples together.
  c.pac_member_batches = False
  # G's updates see D as it was at the start of the step (both gradients at one point, ALI's
  # algorithm, which PacGAN's 2-D code runs); False: through the step's updated D.
  c.simultaneous_updates = False
  c.unroll_steps = 0  # Unrolled GAN: G's loss through this many differentiable D updates

  c.model = ml_collections.ConfigDict()
  c.model.name = "dcgan"
  c.model.nz = 100
  c.model.noise = "normal"  # G's noise: N(0, 1), or "uniform" on [-1, 1]
  c.model.ngf = 64
  c.model.ndf = 64
  c.model.g_norm = "batch"
  c.model.d_norm = "batch"
  c.model.g_hidden = (256, 256)  # mlp only
  c.model.d_hidden = (256, 256)  # mlp only
  c.model.d_maxout = 0  # mlp only: maxout pieces per D unit (Goodfellow et al.); 0 = LeakyReLU
  c.model.g_output = "tanh"  # "linear" for unbounded data (2-D toys)
  c.model.init_std = 0.0  # mlp only: weights N(0, init_std), biases 0; 0 = Flax's defaults
  c.model.dtype = (
    "float32"  # compute dtype of G and D; "bfloat16" on accelerators (params stay f32)
  )
  c.model.num_classes = 0  # > 0: class-conditional G (conditional BatchNorm) and D; needs labels
  c.model.conditioning = "projection"  # D's use of the labels: projection or acgan
  c.model.g_spectral_norm = False  # spectral normalisation of every G layer (SAGAN)
  c.model.d_spectral_norm = False  # ... of every D layer (SNGAN)

  c.augment = ml_collections.ConfigDict()
  c.augment.policy = ""  # DiffAugment ops on all D inputs, e.g. "color,translation,cutout"

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.g = _optimizer(2e-4, 0.5, 0.999)
  c.optimizer.d = _optimizer(2e-4, 0.5, 0.999)

  c.data = ml_collections.ConfigDict()
  c.data.source = "tfds"
  c.data.name = "mnist"  # tfds name (the digits of stacked_mnist), or ring8/grid25 for toy
  c.data.split = "train"
  c.data.path = ""  # .npz file (source=npz) or folder of PNGs (source=folder)
  c.data.manual_dir = ""  # folder with the dataset's original files, for offline tfds
  c.data.data_dir = ""  # tfds data dir; "" = tfds's default
  c.data.download = False  # let tfds fetch a dataset that is neither prepared nor in manual_dir
  c.data.image_size = 0  # resize images to this square size; 0 = keep
  c.data.subset = 0  # train on the first this many examples; 0 = all
  c.data.reshuffle = True  # a new order every epoch; False: every epoch in the first's order
  # source=stacked_mnist: this many 3-channel images of data.split's digits, drawn from this seed
  c.data.stacked_examples = 128000  # PacGAN's training set
  c.data.stacked_seed = 0
  # source=toy: 0 = fresh samples every step; N = a fixed training set of N samples drawn from the
  # seed and N packs of them drawn with replacement, reshuffled every epoch (PacGAN's 2-D code)
  c.data.toy_examples = 0
  c.data.shape = ()  # filled in at start-up from the data: (H, W, C) or (2,)

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64  # global batch (of packs when pac > 1), split over devices and hosts
  c.train.num_steps = 5000  # one step = n_critic D updates + g_steps G updates
  # Linear learning-rate schedules decay to 0 over this many steps; 0 = train.num_steps, fixed in
  # config.json when the run starts, so that a resumed run keeps its schedule.
  c.train.decay_steps = 0

  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  c.num_samples = 64  # size of the fixed-noise sample grid
  c.eval_every = 0  # evaluate (gan_jax.evaluate's metrics) every this many steps and at the end
  c.eval_samples = 0  # generated samples per evaluation; 0 = 2500 for 2-D toys, else 10000
  c.eval_classifier = ""  # gan_jax.classifier directory, needed for image metrics

  # How gan_jax.sweep ranks trials and, with --strategy=pbt or halving, which it keeps training.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.metric = ""  # evaluation metrics, e.g. "fid" or "modes,high_quality_percent" (ranked
  # in turn, ties broken by the next); "" = the data's own (gan_jax.metrics.evaluation.goals)
  c.sweep.goal = ""  # "min" or "max" for every metric; "" = each metric's own direction
  c.pbt = ml_collections.ConfigDict()  # population-based training (Jaderberg et al. 2017)
  c.pbt.interval = 1000  # rank the population every this many steps
  c.pbt.quantile = 0.25  # the bottom quantile copies the top quantile's states
  c.pbt.resample_probability = 0.25  # a copied number is redrawn from the sweep's values, or
  c.pbt.perturb = (0.8, 1.2)  # else multiplied by one of these factors
  c.pbt.seed = 0  # of the choices of donors and perturbations
  c.halving = ml_collections.ConfigDict()  # successive halving
  c.halving.min_steps = 1000  # the first rung
  c.halving.eta = 3  # each rung keeps the best 1/eta of the trials, the next is eta times later

  c.parallel = ml_collections.ConfigDict()
  c.parallel.num_devices = 0  # 0 = all local devices
  # On a CPU host: split its cores into this many XLA devices, each with a share of the batch
  # (0 = JAX's default of one device using every core). See benchmarks/NOTES.md.
  c.parallel.cpu_devices = 0
  # On one CPU device, run each step on the Python thread rather than XLA's dispatch thread: glibc
  # then keeps the step's temporary buffer between steps, while tiny steps (the 2-D toys) would
  # lose their overlap with Python. benchmarks/NOTES.md, seventh round.
  c.parallel.cpu_async_dispatch = False
  return c


def toy_config(dataset: str) -> ml_collections.ConfigDict:
  """The PacGAN 2-D protocol, as the authors' code (fjxmlzn/PacGAN, synthetic_data_experiments)
  sets it: MLP G (4x400, BatchNorm, ReLU, nz=2) and maxout D (3x200, 5 pieces), weights
  N(0, 0.02), non-saturating loss, Adam(1e-4, beta1 0.8), batch 100, 400 epochs of 100,000
  samples (1,000 steps each), 2,500 samples evaluated at the end."""
  c = base_config()
  c.data.source = "toy"
  c.data.name = dataset
  c.model.name = "mlp"
  c.model.nz = 2
  c.model.g_hidden = (400, 400, 400, 400)
  c.model.g_norm = "batch"
  c.model.g_output = "linear"
  c.model.d_hidden = (200, 200, 200)
  c.model.d_maxout = 5
  c.model.d_norm = "none"
  c.model.init_std = 0.02
  for net in "gd":
    c.optimizer[net].lr, c.optimizer[net].b1 = 1e-4, 0.8
  c.train.batch_size = 100
  c.train.num_steps = 400_000
  c.log_every = 1000
  c.sample_every = 20_000
  c.checkpoint_every = 10_000
  c.eval_every = 50_000  # and at the end (the protocol's numbers)
  c.num_samples = 2500  # the PacGAN protocol's sample count
  c.parallel.cpu_async_dispatch = True  # ~15 ms steps: overlapping Python's work pays
  return c


def _get(config, field):
  value = config
  for part in field.split("."):
    value = value[part]
  return value


def _choice(config, field, allowed):
  value = _get(config, field)
  if value not in allowed:
    raise UserError(f"config.{field}={value!r} is not one of {', '.join(allowed)}")


def _positive(config, field, value, allow_zero=False):
  if value < 0 or (value == 0 and not allow_zero):
    raise UserError(f"config.{field}={value} must be {'>= 0' if allow_zero else '> 0'}")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raise UserError naming the first field that cannot work."""
  _choice(config, "loss", LOSSES)
  _choice(config, "model.name", MODELS)
  _choice(config, "model.noise", NOISES)
  _choice(config, "model.g_norm", NORMS)
  _choice(config, "model.d_norm", NORMS)
  _choice(config, "model.g_output", ("tanh", "linear"))
  _choice(config, "model.dtype", DTYPES)
  _choice(config, "optimizer.g.name", OPTIMIZERS)
  _choice(config, "optimizer.d.name", OPTIMIZERS)
  _choice(config, "optimizer.g.schedule", SCHEDULES)
  _choice(config, "optimizer.d.schedule", SCHEDULES)
  _choice(config, "model.conditioning", CONDITIONINGS)
  augment_ops(config.augment.policy)
  _choice(config, "data.source", SOURCES)
  if config.data.source == "toy":
    _choice(config, "data.name", TOY_DATASETS)
  if config.data.toy_examples and config.data.source != "toy":
    raise UserError("config.data.toy_examples is the 2-D toys' training set; set it to 0")
  if config.data.source in ("npz", "folder") and not config.data.path:
    raise UserError(f"config.data.source={config.data.source} needs --config.data.path=PATH")
  for field in (
    "n_critic",
    "g_steps",
    "pac",
    "train.batch_size",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "keep_checkpoints",
    "num_samples",
    "model.nz",
    "data.stacked_examples",
    "model.ngf",
    "model.ndf",
  ):
    _positive(config, field, _get(config, field))
  for field in (
    "clip_value",
    "gp_weight",
    "r1_gamma",
    "train.num_steps",
    "data.image_size",
    "parallel.num_devices",
    "parallel.cpu_devices",
    "model.d_maxout",
    "model.init_std",
    "eval_every",
    "eval_samples",
    "data.subset",
    "data.toy_examples",
    "train.decay_steps",
    "model.num_classes",
    "acgan_weight",
    "unroll_steps",
  ):
    _positive(config, field, _get(config, field), allow_zero=True)
  for field in (
    "ema_decay",
    *(f"optimizer.{n}.{k}" for n in "gd" for k in ("b1", "b2", "rms_decay")),
  ):
    if not 0.0 <= _get(config, field) < 1.0:
      raise UserError(f"config.{field}={_get(config, field)} must be in [0, 1)")
  for net in "gd":
    _positive(config, f"optimizer.{net}.lr", config.optimizer[net].lr)
  if config.eval_every and config.data.source != "toy" and not config.eval_classifier:
    raise UserError(
      "config.eval_every on images needs config.eval_classifier=DIR "
      "(python -m gan_jax.classifier trains one)"
    )
  if config.loss == "wgan_gp" and config.gp_weight == 0:
    raise UserError("config.loss=wgan_gp needs config.gp_weight > 0")
  penalty = (
    "loss=wgan_gp" if config.loss == "wgan_gp" else "r1_gamma > 0" if config.r1_gamma else ""
  )
  if penalty and config.model.d_norm == "batch" and config.model.name != "resnet":
    raise UserError(
      f"config.{penalty} penalises each sample's input gradient, which a BatchNorm critic mixes "
      "across the batch; set --config.model.d_norm=layer (Gulrajani et al.) or none"
    )

  if config.model.num_classes:
    if config.model.name in ("mlp", "tf_dcgan") or config.data.source in ("toy", "stacked_mnist"):
      raise UserError(
        "config.model.num_classes > 0 needs labelled images and model dcgan or resnet "
        "(the 2-D toys, Stacked MNIST, the MLP and tf_dcgan are unconditional)"
      )
    if config.pac > 1:
      raise UserError("config.pac > 1 packs unconditional samples; set config.model.num_classes=0")
    if config.model.name == "dcgan" and config.model.g_norm != "batch":
      raise UserError(
        "config.model.num_classes > 0 conditions G's BatchNorm; set --config.model.g_norm=batch"
      )
  if config.model.name == "tf_dcgan" and (
    config.model.g_spectral_norm or config.model.d_spectral_norm
  ):
    raise UserError("model tf_dcgan has no spectral norm; use model dcgan or resnet")
  if config.unroll_steps and config.optimizer.d.name != "adam":
    raise UserError(
      "config.unroll_steps > 0 differentiates through D's optimiser, which needs "
      "config.optimizer.d.name=adam (RMSProp's square root has no safe derivative at 0)"
    )
  _choice(config, "sweep.goal", ("", "min", "max"))
  for field in ("pbt.interval", "halving.min_steps"):
    _positive(config, field, _get(config, field))
  if not 0.0 < config.pbt.quantile <= 0.5:
    raise UserError(f"config.pbt.quantile={config.pbt.quantile} must be in (0, 0.5]")
  if not 0.0 <= config.pbt.resample_probability <= 1.0:
    raise UserError(
      f"config.pbt.resample_probability={config.pbt.resample_probability} must be in [0, 1]"
    )
  if config.halving.eta < 2:
    raise UserError(f"config.halving.eta={config.halving.eta} must be >= 2")
  if config.augment.policy and config.data.source == "toy":
    raise UserError("config.augment.policy augments images; the 2-D toys have none")


def augment_ops(policy: str) -> tuple[str, ...]:
  """config.augment.policy as DiffAugment ops: "color,translation" -> ("color", "translation")."""
  ops = tuple(op.strip() for op in policy.split(",") if op.strip())
  for op in ops:
    if op not in AUGMENT_OPS:
      raise UserError(f"config.augment.policy: unknown op {op!r} (ops: {', '.join(AUGMENT_OPS)})")
  return ops


def validated(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config`, for a run to complete (data.shape), once validate() accepts it."""
  validate(config)
  config = config.copy_and_resolve_references()
  schedules = (config.optimizer.g.schedule, config.optimizer.d.schedule)
  if "linear" in schedules and not config.train.decay_steps:
    config.train.decay_steps = config.train.num_steps
  return config


def flatten(config, prefix="") -> dict:
  flat = {}
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = list(value) if isinstance(value, tuple) else value
  return flat


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """A run's config.json as a config; fields added to the config since the run started take their
  defaults, which reproduce what the run did."""

  def merge(defaults: dict, values: dict) -> dict:
    merged = dict(defaults)
    for key, value in values.items():
      nested = isinstance(value, dict) and isinstance(defaults.get(key), dict)
      merged[key] = merge(defaults[key], value) if nested else value
    return merged

  return ml_collections.ConfigDict(merge(base_config().to_dict(), saved))


def check_same_experiment(saved: dict, config: ml_collections.ConfigDict) -> None:
  """Raise UserError if a workdir's saved config describes another experiment."""
  old, new = flatten(saved), flatten(config.to_dict())
  for key in sorted(set(old) | set(new)):
    if key in RESUMABLE_CHANGES or key == "data.shape":
      continue
    if old.get(key) != new.get(key):
      raise UserError(
        f"the workdir holds a different experiment ({key}: {old.get(key)!r} there, "
        f"{new.get(key)!r} now); use a new --workdir or the same config"
      )
