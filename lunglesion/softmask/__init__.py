"""Soft Mask annotation pipeline (hard mask + image -> partial-volume soft mask)."""

from lunglesion.softmask.matting import DOMAINS, make_soft_mask, soft_mask_array

__all__ = ["DOMAINS", "make_soft_mask", "soft_mask_array"]
