"""Completeness check for NIfTI files: ITK silently zero-fills a truncated ``.nii``/``.nii.gz``."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from lunglesion.errors import InputError


def _expected_size(header: bytes, path: Path) -> int:
    """Header + voxel bytes a complete NIfTI-1/-2 file must hold."""
    for endian in "<>":
        sizeof_hdr = struct.unpack(endian + "i", header[:4])[0]
        if sizeof_hdr == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
        if sizeof_hdr == 540:
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            break
    else:
        raise InputError(f"could not read {path} as an image (not a NIfTI header)")
    count = int(np.prod([max(int(d), 1) for d in dims[1:1 + max(0, min(int(dims[0]), 7))]]))
    return max(offset, sizeof_hdr) + count * bitpix // 8


def _gzip_length(path: Path) -> int | None:
    """Uncompressed length of a gzip file, or None when the stream ends early."""
    decompressor = zlib.decompressobj(wbits=47)
    total = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            while chunk:
                total += len(decompressor.decompress(chunk))
                chunk = decompressor.unused_data
                if chunk:
                    decompressor = zlib.decompressobj(wbits=47)  # next gzip member
    return total if decompressor.eof else None


def check_nifti_complete(path: Path) -> None:
    """InputError when a ``.nii`` or ``.nii.gz`` file holds fewer voxel bytes than its header says."""
    compressed = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
            header = handle.read(540)
    except (OSError, EOFError):
        raise InputError(f"could not read {path} as an image (corrupt gzip stream)") from None
    expected = _expected_size(header, path)
    if compressed:
        with open(path, "rb") as handle:
            handle.seek(-4, 2)
            trailer = struct.unpack("<I", handle.read(4))[0]  # gzip ISIZE: length mod 2**32
        complete = trailer == expected % 2**32 or _gzip_length(path) == expected
    else:
        complete = path.stat().st_size >= expected
    if not complete:
        raise InputError(f"could not read {path} as an image (file is truncated: fewer voxels than its header "
                         "declares)")
