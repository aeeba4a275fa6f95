"""A labelled 2D set laid out as ``DIR/images/<stem>.*`` + ``DIR/masks/<stem>.*``.

Images are read as grey and mapped to the network domain [0, 1] (8-bit lung-window
slices divided by 255); masks are binary (> 127) or, for multi-class sets, integer labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from lunglesion.errors import EmptyInputError, InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass
class Sample2D:
    """One labelled slice: grey image in [0, 1] and its label array."""

    stem: str
    image: np.ndarray
    mask: np.ndarray


def files_by_stem(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem (name without suffix), in name order."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _sort_key(stem: str) -> tuple[int, int | str]:
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def read_grey_unit(path: Path) -> np.ndarray:
    """An 8-bit (or 16-bit) 2D image file as float32 grey in [0, 1]."""
    try:
        with PILImage.open(path) as im:
            array = np.asarray(im.convert("I;16") if im.mode.startswith("I;16") else im.convert("L"))
    except OSError as exc:
        raise InputError(f"cannot read image file {path}: {exc}") from exc
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    return array.astype(np.float32) / scale


def read_label_png(path: Path, multiclass: bool = False) -> np.ndarray:
    """A mask file as uint8: binary {0, 1} (pixels > 127) or the raw class values."""
    try:
        with PILImage.open(path) as im:
            # palette masks hold class indices; converting them to grey would map 1 -> 75
            array = np.asarray(im if multiclass and im.mode == "P" else im.convert("L"))
    except OSError as exc:
        raise InputError(f"cannot read mask file {path}: {exc}") from exc
    return array.astype(np.uint8) if multiclass else (array > 127).astype(np.uint8)


def list_pairs(root: Path, mask_folder: str = "masks") -> list[tuple[str, Path, Path]]:
    """``(stem, image_path, mask_path)`` for every stem present in both folders."""
    root = Path(root)
    images_dir, masks_dir = root / "images", root / mask_folder
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise InputError(f"labelled set {root} has no '{folder.name}/' folder")
    images, masks = files_by_stem(images_dir), files_by_stem(masks_dir)
    stems = sorted(set(images) & set(masks), key=_sort_key)
    if not stems:
        raise EmptyInputError(f"no image/mask pairs with matching names in {root}")
    return [(s, images[s], masks[s]) for s in stems]


def load_labelled_set(root: Path, mask_folder: str = "masks", multiclass: bool = False,
                      stems: list[str] | None = None) -> list[Sample2D]:
    """Read every pair (or only ``stems``) into memory."""
    pairs = list_pairs(root, mask_folder)
    if stems is not None:
        wanted = set(stems)
        pairs = [p for p in pairs if p[0] in wanted]
    samples = []
    for stem, image_path, mask_path in pairs:
        image = read_grey_unit(image_path)
        mask = read_label_png(mask_path, multiclass=multiclass)
        if image.shape != mask.shape:
            raise InputError(f"image {image_path.name} {image.shape} and mask {mask_path.name} "
                             f"{mask.shape} differ in size")
        samples.append(Sample2D(stem, image, mask))
    return samples
