"""Exceptions raised by lunglesion for bad input; the CLI prints them as one line."""

from __future__ import annotations


class LungLesionError(Exception):
    """Base class: a problem the user can fix, reported as one clear line."""


class InputError(LungLesionError):
    """The input file or folder is missing, unreadable, corrupt or of the wrong kind."""


class NotCTError(InputError):
    """The intensities are not those of a CT in Hounsfield units (e.g. an MR volume)."""


class DimensionError(InputError):
    """A 2D image was given where a 3D volume is needed, or the other way round."""


class EmptyInputError(InputError):
    """The image or label holds no usable voxels."""


class UnknownModelError(LungLesionError):
    """The requested model name is not in the registry."""


class UntrainedArchitectureError(UnknownModelError):
    """The name is an architecture of the catalog with no trained weights in the registry."""


class ModelFileError(LungLesionError):
    """A registered model's weight file is missing or fails its checksum."""


class Cancelled(LungLesionError):
    """The user cancelled a long-running operation."""
