"""Loading whole image datasets into memory as uint8 (N, H, W, C): tfds, .npz and PNG folders."""

import os
import pathlib
import zipfile

import numpy as np
from PIL import Image

from gan_jax import UserError


def load_tfds(
  name: str,
  split: str,
  data_dir: str = "",
  manual_dir: str = "",
  download: bool = False,
  with_labels: bool = False,
):
  """A tfds image dataset's split (and its labels if asked), prepared once into `data_dir`.

  Offline (the default) it is prepared from the original files in `manual_dir`; a missing file is
  an error at once, not a download that would hang on an air-gapped machine.
  """
  import tensorflow_datasets as tfds  # imported here: TensorFlow is slow to import

  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except Exception as e:  # tfds raises DatasetNotFoundError and friends
    raise UserError(f"unknown tfds dataset {name!r}: {_first_line(e)}") from e
  if not builder.is_prepared():
    _check_offline_files(builder, name, manual_dir, download)
    # Each dataset extracts into its own folder: MNIST and Fashion-MNIST share file names.
    downloads = os.path.join(builder.data_dir_root, "downloads", name)
    download_config = tfds.download.DownloadConfig(
      manual_dir=manual_dir or None,
      extract_dir=os.path.join(downloads, "extracted"),
      try_download_gcs=False,
    )
    try:
      builder.download_and_prepare(download_dir=downloads, download_config=download_config)
    except Exception as e:
      raise UserError(
        f"could not prepare tfds dataset {name!r} in {builder.data_dir_root} "
        f"({type(e).__name__}: {_first_line(e)})"
      ) from e
  keys = ("image", "label") if with_labels else ("image",)
  for key in keys:
    if key not in builder.info.features:
      raise UserError(
        f"tfds dataset {name!r} has no {key!r} feature (it has {sorted(builder.info.features)})"
      )
  try:
    ds = builder.as_dataset(split=split, batch_size=4096, shuffle_files=False)
  except Exception as e:
    raise UserError(f"tfds dataset {name!r} has no split {split!r}: {_first_line(e)}") from e
  batches = list(tfds.as_numpy(ds))
  images = _check_images(np.concatenate([b["image"] for b in batches]), f"tfds:{name}")
  if with_labels:
    return images, np.concatenate([b["label"] for b in batches]).astype(np.int32)
  return images


def _check_offline_files(builder, name: str, manual_dir: str, download: bool) -> None:
  if download:
    return
  where = f"tfds dataset {name!r} is not prepared in {builder.data_dir_root}"
  if not manual_dir:
    raise UserError(
      f"{where}: pass --config.data.manual_dir=FOLDER holding its original files "
      "(or --config.data.download=True to fetch them)"
    )
  if not os.path.isdir(manual_dir):
    raise UserError(f"config.data.manual_dir={manual_dir!r} is not a folder")
  expected = [
    info.filename or url.rsplit("/", 1)[-1] for url, info in (builder.url_infos or {}).items()
  ]
  missing = [f for f in expected if not os.path.exists(os.path.join(manual_dir, f))]
  if missing:
    raise UserError(
      f"{where}, and config.data.manual_dir={manual_dir!r} lacks {', '.join(missing)}"
    )


def load_npz(path: str, with_labels: bool = False, setting: str = "config.data.path"):
  """The 'images' array of an .npz file (and its 'labels' if asked). `setting` names what the
  user set the path with, for the error messages."""
  if not os.path.isfile(path):
    raise UserError(f"{setting}={path!r}: no such file")
  keys = ("images", "labels") if with_labels else ("images",)
  try:
    with np.load(path, allow_pickle=False) as archive:
      for key in keys:
        if key not in archive:
          raise UserError(f"{path} has no {key!r} array (it has {list(archive.keys())})")
      arrays = [archive[key] for key in keys]
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # what np.load raises
    raise UserError(f"{path} is not a readable .npz of arrays ({_first_line(e)})") from e
  images = _check_images(arrays[0], path)
  return (images, _check_labels(arrays[1], len(images), path)) if with_labels else images


def load_folder(
  path: str, size: int = 0, with_labels: bool = False, setting: str = "config.data.path"
):
  """Every PNG in a folder (sorted by name), in the colour mode of the first; resized to
  size x size when `size` is given (the files may then differ in size). With labels, the PNGs
  of its subfolders instead, each subfolder a class (classes numbered in name order)."""
  folder = pathlib.Path(path)
  if not with_labels:
    return _load_pngs(path, sorted(folder.glob("*.png")) if folder.is_dir() else [], size, setting)
  classes = sorted(d for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
  files = [(f, label) for label, d in enumerate(classes) for f in sorted(d.glob("*.png"))]
  if not files:
    raise UserError(
      f"{setting}={path!r} has no class subfolders of .png files, from which a conditional "
      "model (model.num_classes > 0) or a classifier reads the labels"
    )
  images = _load_pngs(path, [f for f, _ in files], size, setting)
  return images, np.array([label for _, label in files], np.int32)


def _load_pngs(path: str, files: list, size: int, setting: str) -> np.ndarray:
  if not files:
    raise UserError(f"{setting}={path!r} is not a folder of .png files")
  images, mode = [], None
  for f in files:
    try:
      with Image.open(f) as image:
        mode = mode or ("L" if image.mode in ("L", "LA", "1", "I", "I;16") else "RGB")
        image = image.convert(mode)
        images.append(np.asarray(_square(image, size) if size else image))
    except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
      raise UserError(f"{f} is not a readable image ({_first_line(e)})") from e
  if len({im.shape for im in images}) > 1:
    raise UserError(f"the PNGs in {path} differ in size; set --config.data.image_size")
  return _check_images(np.stack(images), path)


def _square(image: Image.Image, size: int) -> Image.Image:
  return image.resize((size, size), Image.BILINEAR)


def resize(images: np.ndarray, size: int) -> np.ndarray:
  """Square-resize (bilinear, antialiased when shrinking) every image."""
  if images.shape[1:3] == (size, size):
    return images
  mode = "L" if images.shape[-1] == 1 else "RGB"
  out = [
    np.asarray(_square(Image.fromarray(im.squeeze(-1) if mode == "L" else im, mode), size))
    for im in images
  ]
  return np.stack(out).reshape(len(images), size, size, images.shape[-1])


def _check_images(images: np.ndarray, origin: str) -> np.ndarray:
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
    raise UserError(
      f"{origin}: expected uint8 images (N, H, W, 1 or 3), got {images.dtype} {images.shape}"
    )
  return images


def _check_labels(labels: np.ndarray, count: int, origin: str) -> np.ndarray:
  labels = np.asarray(labels).reshape(-1) if np.ndim(labels) == 2 else np.asarray(labels)
  if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
    raise UserError(
      f"{origin}: expected one integer label >= 0 per image ({count}), "
      f"got {labels.dtype} {labels.shape}"
    )
  return labels.astype(np.int32)


def _first_line(e: Exception) -> str:
  return (str(e).strip().splitlines() or [""])[0][:300]
