"""Data sources on real files and tfds mocks; batches as a pure function of (seed, step)."""

import numpy as np
import pytest
from PIL import Image

from gan_jax import UserError, data, train_step
from gan_jax.config import base_config
from gan_jax.data import sources, stacked_mnist, toy


def test_batches_are_a_function_of_the_step_and_cover_each_epoch_once():
  examples = np.arange(50)[:, None]
  ds = data.from_array(examples, seed=3, n_critic=2, global_batch=5, host_start=0, host_size=5)
  first_epoch = np.concatenate([ds.batch(s).reshape(-1) for s in range(5)])  # 5 steps x 10 = 50
  assert sorted(first_epoch) == list(range(50))
  second_epoch = np.concatenate([ds.batch(s).reshape(-1) for s in range(5, 10)])
  assert sorted(second_epoch) == list(range(50)) and not np.array_equal(first_epoch, second_epoch)
  again = data.from_array(examples, seed=3, n_critic=2, global_batch=5, host_start=0, host_size=5)
  np.testing.assert_array_equal(again.batch(7), ds.batch(7))  # no state: step 7 directly
  other_seed = data.from_array(
    examples, seed=4, n_critic=2, global_batch=5, host_start=0, host_size=5
  )
  assert not np.array_equal(other_seed.batch(0), ds.batch(0))


def test_without_reshuffling_every_epoch_repeats_the_first():
  """data.reshuffle=False (PacGAN's Stacked-MNIST code keeps one order): the first epoch is the
  reshuffled dataset's, and every later step reads the batch of its place in the first epoch."""
  examples = np.arange(50)[:, None]
  make = lambda **kw: data.from_array(examples, 3, 2, 5, 0, 5, **kw)
  fixed, reshuffled = make(reshuffle=False), make()
  for step in range(5):
    np.testing.assert_array_equal(fixed.batch(step), reshuffled.batch(step))
    np.testing.assert_array_equal(fixed.batch(step + 5), fixed.batch(step))
    np.testing.assert_array_equal(fixed.batch(step + 15), fixed.batch(step))
  config = base_config()  # the config's field reaches the training data
  config.train.batch_size, config.data.reshuffle = 10, False
  by_config = data.create(config, 0, 10, examples)
  np.testing.assert_array_equal(by_config.batch(6), by_config.batch(1))


@pytest.mark.parametrize("source", ["array", "toy", "toy set"])
def test_hosts_share_the_global_batch(source):
  def make(start, size):
    if source == "toy":
      return data.from_toy("grid25", 0, 2, 8, start, size)
    if source == "toy set":  # packs of 2: each host reads whole packs
      return data.from_toy("grid25", 0, 2, 8, start, size, fixed_set=20, pac=2)
    return data.from_array(np.arange(40)[:, None], 0, 2, 8, start, size)

  whole = make(0, 8).batch(3)
  halves = np.concatenate([make(0, 4).batch(3), make(4, 4).batch(3)], axis=1)
  np.testing.assert_array_equal(whole, halves)


def test_a_fixed_toy_set_is_packs_drawn_once_and_reshuffled_every_epoch():
  """data.toy_examples=N (PacGAN's GaussianPackingMixture): N samples from the seed, N packs of
  them drawn with replacement; an epoch (N packs / batch) reads each pack once."""
  n, pac, batch = 40, 3, 5  # batch: packs a step (one D batch), so 8 steps are an epoch
  ds = data.from_toy("ring8", 7, 1, batch * pac, 0, batch * pac, fixed_set=n, pac=pac)
  packs = lambda steps: np.concatenate([ds.batch(s).reshape(-1, pac, 2) for s in steps])
  first, second = packs(range(8)), packs(range(8, 16))
  assert first.shape == (n, pac, 2)
  # D's packs are the set's packs: train_step.pack joins runs of `pac` consecutive samples
  np.testing.assert_array_equal(
    train_step.pack(ds.batch(0)[0], pac), first[:batch].reshape(batch, -1)
  )
  as_set = lambda p: sorted(map(bytes, p))
  assert as_set(first) == as_set(second) and not np.array_equal(first, second)
  samples = np.unique(first.reshape(-1, 2), axis=0)
  assert len(samples) <= n  # 120 members, drawn from the n samples
  centres, sigma = toy.modes("ring8")
  assert np.linalg.norm(samples[:, None] - centres[None], axis=-1).min(1).max() < 5 * sigma
  again = data.from_toy("ring8", 7, 1, batch * pac, 0, batch * pac, fixed_set=n, pac=pac)
  np.testing.assert_array_equal(again.batch(11), ds.batch(11))  # no state: step 11 directly
  other_seed = data.from_toy("ring8", 8, 1, batch * pac, 0, batch * pac, fixed_set=n, pac=pac)
  assert not np.array_equal(other_seed.batch(0), ds.batch(0))
  config = base_config()  # the config's fields reach the training data
  config.data.source, config.data.name, config.data.toy_examples = "toy", "ring8", n
  config.seed, config.pac, config.n_critic, config.train.batch_size = 7, pac, 1, batch
  np.testing.assert_array_equal(data.create(config, 0, batch * pac).batch(11), ds.batch(11))
  config.data.toy_examples = 0  # fresh samples: no point comes back
  fresh = np.concatenate([data.create(config, 0, batch * pac).batch(s) for s in range(8)])
  assert len(np.unique(fresh.reshape(-1, 2), axis=0)) == n * pac


def test_toy_samples_sit_on_their_modes():
  for name, count, sigma in (("ring8", 8, 0.01), ("grid25", 25, 0.05)):
    centres, s = toy.modes(name)
    assert centres.shape == (count, 2) and s == sigma
    points = toy.sample(name, np.random.default_rng(0), 5000)
    distance = np.linalg.norm(points[:, None] - centres[None], axis=-1)
    assert np.all(distance.min(1) < 5 * sigma)
    assert len(np.unique(distance.argmin(1))) == count
  np.testing.assert_allclose(np.linalg.norm(toy.modes("ring8")[0], axis=1), 1.0)


def test_npz_cifar10_test_split(shared_data):
  images = sources.load_npz(str(shared_data / "cifar10" / "test.npz"))
  assert images.shape == (10000, 32, 32, 3) and images.dtype == np.uint8
  # the published CIFAR-10 test-set channel means
  np.testing.assert_allclose(images[..., 0].mean() / 255, 0.4942143, atol=1e-6)
  small = sources.resize(images[:4], 16)
  assert small.shape == (4, 16, 16, 3)
  np.testing.assert_allclose(small.mean(), images[:4].mean(), atol=2.0)


def test_folder_of_pngs(tmp_path):
  rng = np.random.default_rng(0)
  pictures = rng.integers(0, 256, size=(3, 10, 10), dtype=np.uint8)
  for i, p in enumerate(pictures):
    Image.fromarray(p, "L").save(tmp_path / f"{i:03d}.png")
  images = sources.load_folder(str(tmp_path))
  np.testing.assert_array_equal(images[..., 0], pictures)
  with pytest.raises(UserError, match="not a folder of .png"):
    sources.load_folder(str(tmp_path / "missing"))


def test_npz_errors(tmp_path):
  np.savez(tmp_path / "bad.npz", pixels=np.zeros((2, 4, 4, 3), np.uint8))
  with pytest.raises(UserError, match="no 'images' array"):
    sources.load_npz(str(tmp_path / "bad.npz"))
  with pytest.raises(UserError, match="no such file"):
    sources.load_npz(str(tmp_path / "none.npz"))
  np.savez(tmp_path / "good.npz", images=np.zeros((50, 4, 4, 3), np.uint8))
  damaged = {
    "truncated.npz": (tmp_path / "good.npz").read_bytes()[:300],
    "garbage.npz": b"not an archive at all",
  }
  for name, content in damaged.items():
    (tmp_path / name).write_bytes(content)
  np.savez(tmp_path / "pickled.npz", images=np.array([object()], dtype=object))
  for name in (*damaged, "pickled.npz"):
    with pytest.raises(UserError, match="is not a readable .npz"):
      sources.load_npz(str(tmp_path / name))


def test_folder_errors(tmp_path):
  (tmp_path / "000.png").write_text("a text file named like a picture")
  with pytest.raises(UserError, match="000.png is not a readable image"):
    sources.load_folder(str(tmp_path))
  (tmp_path / "000.png").unlink()
  Image.fromarray(np.zeros((10, 10), np.uint8), "L").save(tmp_path / "000.png")
  Image.fromarray(np.zeros((12, 8), np.uint8), "L").save(tmp_path / "001.png")
  with pytest.raises(UserError, match="differ in size; set --config.data.image_size"):
    sources.load_folder(str(tmp_path))
  assert sources.load_folder(str(tmp_path), size=6).shape == (2, 6, 6, 1)  # size set: resized


def test_tfds_by_name_with_mock_data(tmp_path):
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=12):
    images = sources.load_tfds("fashion_mnist", "train", str(tmp_path), download=True)
  assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8


def test_tfds_offline_errors_name_the_fix(tmp_path):
  with pytest.raises(UserError, match="manual_dir=FOLDER"):
    sources.load_tfds("mnist", "train", str(tmp_path))
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="lacks t10k-images-idx3-ubyte.gz"):
    sources.load_tfds("mnist", "train", str(tmp_path), str(tmp_path / "empty"))
  with pytest.raises(UserError, match="unknown tfds dataset"):
    sources.load_tfds("no_such_dataset_xyz", "train", str(tmp_path))


@pytest.fixture(scope="module")
def mnist_tfds_dir(shared_data, tmp_path_factory):
  """A tfds data dir in which MNIST gets prepared (once: preparing takes most of a minute)."""
  return tmp_path_factory.mktemp("tfds")


def test_tfds_prepares_real_mnist_offline(shared_data, mnist_tfds_dir):
  """The stock tfds builder accepts the original IDX files through manual_dir (no network)."""
  images = sources.load_tfds("mnist", "test", str(mnist_tfds_dir), str(shared_data / "mnist"))
  assert images.shape == (10000, 28, 28, 1)
  # MNIST test-set mean intensity is 33.79 / 255 = 0.1325
  np.testing.assert_allclose(images.mean() / 255, 0.1325, atol=5e-4)


def test_labels_from_npz_and_class_subfolders(tmp_path):
  images = np.zeros((4, 6, 6, 1), np.uint8)
  np.savez(tmp_path / "labelled.npz", images=images, labels=np.array([3, 1, 0, 2]))
  _, labels = sources.load_npz(str(tmp_path / "labelled.npz"), with_labels=True)
  np.testing.assert_array_equal(labels, [3, 1, 0, 2])
  np.savez(tmp_path / "unlabelled.npz", images=images)
  with pytest.raises(UserError, match="has no 'labels' array"):
    sources.load_npz(str(tmp_path / "unlabelled.npz"), with_labels=True)
  for name, count in (("cat", 2), ("ant", 1), ("dog", 3)):  # classes in name order: ant cat dog
    (tmp_path / "folder" / name).mkdir(parents=True)
    for i in range(count):
      Image.fromarray(np.full((5, 5), i, np.uint8), "L").save(
        tmp_path / "folder" / name / f"{i}.png"
      )
  images, labels = sources.load_folder(str(tmp_path / "folder"), with_labels=True)
  assert images.shape == (6, 5, 5, 1)
  np.testing.assert_array_equal(labels, [0, 1, 1, 2, 2, 2])
  with pytest.raises(UserError, match="no class subfolders"):
    sources.load_folder(str(tmp_path / "folder" / "dog"), with_labels=True)


def test_labelled_batches_and_the_checks_of_a_conditional_dataset(tmp_path):
  examples = data.Examples(np.arange(20)[:, None].astype(np.uint8), np.arange(20) % 4)
  images, labels = data.from_array(examples, 0, 2, 5, 0, 5).batch(3)
  assert images.shape == (2, 5, 1) and labels.shape == (2, 5)
  np.testing.assert_array_equal(labels, images[..., 0] % 4)  # each label stays with its image
  np.savez(
    tmp_path / "four.npz", images=np.zeros((20, 4, 4, 1), np.uint8), labels=np.arange(20) % 4
  )
  config = base_config()
  config.data.source, config.data.path = "npz", str(tmp_path / "four.npz")
  config.data.subset = 6
  config.model.num_classes = 4
  loaded = data.load_for(config)
  assert len(loaded.images) == len(loaded.labels) == 6  # data.subset: the first 6
  config.model.num_classes = 3
  with pytest.raises(UserError, match="the data has label 3, config.model.num_classes=3"):
    data.load_for(config)


def test_stacked_mnist_stacks_three_digits_drawn_from_the_seed(shared_data, mnist_tfds_dir):
  """Each channel is one of the pool's digits, drawn from data.stacked_seed alone; the source
  builds it from tfds MNIST through load_examples."""
  pool = np.arange(50, dtype=np.uint8)[:, None, None, None] * np.ones((1, 28, 28, 1), np.uint8)
  images = stacked_mnist.stack(pool, 2000, seed=3)
  assert images.shape == (2000, 28, 28, 3) and images.dtype == np.uint8
  picks = images[:, 0, 0, :]  # the pool index of each channel's digit
  assert np.all(images == picks[:, None, None, :])
  assert (
    len(np.unique(picks)) == 50 and abs(np.mean(picks == picks[:, :1]) - (1 + 2 / 50) / 3) < 0.02
  )
  np.testing.assert_array_equal(stacked_mnist.stack(pool, 2000, seed=3), images)
  assert not np.array_equal(stacked_mnist.stack(pool, 2000, seed=4), images)

  config = base_config().data
  config.source, config.split, config.stacked_examples = "stacked_mnist", "test", 300
  config.data_dir, config.manual_dir = str(mnist_tfds_dir), str(shared_data / "mnist")
  examples = data.load_examples(config)
  digits = sources.load_tfds("mnist", "test", str(mnist_tfds_dir))
  np.testing.assert_array_equal(examples.images, stacked_mnist.stack(digits, 300, seed=0))
