"""The image object passed between every part of lunglesion.

Geometry follows SimpleITK/ITK (and DICOM) conventions exactly, so that a round trip
through any file format can be compared with what SimpleITK reads:

* ``array`` is indexed ``[z, y, x]`` for volumes and ``[y, x]`` for 2D images
  (``sitk.GetArrayFromImage`` order); an RGB 2D image is ``[y, x, c]`` only before
  :func:`lunglesion.io.read_image` converts it to grey.
* ``spacing`` and ``origin`` are given in ``(x, y, z)`` order, in millimetres, in the
  LPS patient frame; ``direction`` is the 3x3 (or 2x2) matrix whose columns are the
  directions of the i, j, k axes in LPS.

Slicer works in RAS; :data:`LPS_TO_RAS` is the one definition of the conversion (its own
inverse). The MRML bridge (``LungLesionSeg/LungLesionSegLib/mrml_bridge.py``) applies it to
node geometry, and the CLI to seed points given in Slicer's RAS coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
"""Maps LPS points and axis directions to RAS (and back: the matrix is its own inverse)."""


@dataclass
class Image:
    """A voxel array with its physical geometry (ITK/LPS conventions)."""

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(self.ndim, self.ndim)
        if len(self.spacing) != self.ndim or len(self.origin) != self.ndim:
            raise ValueError(
                f"geometry of dimension {len(self.spacing)} does not match a {self.ndim}D array"
            )

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self.array.ndim

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume (3D) or area (2D) of one voxel in mm^3 / mm^2."""
        return float(np.prod(self.spacing))

    def with_array(self, array: np.ndarray) -> "Image":
        """Same geometry, new voxels (e.g. a labelmap or probability map of this image)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} differs from image shape {self.array.shape}")
        return replace(self, array=array, metadata=dict(self.metadata))

    def index_to_physical(self, index_xyz: np.ndarray) -> np.ndarray:
        """Continuous voxel index (x, y, z order) to LPS millimetres."""
        index_xyz = np.asarray(index_xyz, dtype=np.float64)
        return np.asarray(self.origin) + self.direction @ (np.asarray(self.spacing) * index_xyz)

    def physical_to_index(self, point_lps: np.ndarray) -> np.ndarray:
        """LPS millimetres to continuous voxel index (x, y, z order)."""
        offset = np.asarray(point_lps, dtype=np.float64) - np.asarray(self.origin)
        return np.linalg.solve(self.direction, offset) / np.asarray(self.spacing)

    def same_geometry(self, other: "Image", atol: float = 1e-5) -> bool:
        """True when both images share shape, spacing, origin and direction."""
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )


def image_2d(array: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> Image:
    """A 2D image with identity direction and zero origin (slices without geometry)."""
    return Image(array=array, spacing=spacing, origin=(0.0, 0.0), direction=np.eye(2))
