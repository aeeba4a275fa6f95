"""Pure-PyTorch affine registration of support slices onto query slices (RP-Net's m_0).

All pairs are registered at once: a batch of 2x3 affine matrices (starting at the
identity) is fitted by Adam on the normalised cross-correlation between the warped
support and the query, at a reduced resolution; the matrices are resolution-free
(``F.affine_grid`` coordinates) and warp the support label at any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def warp(images: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Warp (N, C, H, W) by (N, 2, 3) output-to-input affine matrices (zeros outside)."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def ncc_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - mean normalised cross-correlation of each pair in (N, 1, H, W) batches."""
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    ncc = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-6)
    return 1 - ncc.mean()


def register_affine(moving: torch.Tensor, fixed: torch.Tensor, iterations: int = 50, lr: float = 0.01,
                    size: int = 64) -> torch.Tensor:
    """Affine matrices (N, 2, 3) warping ``moving`` (N, H, W) onto ``fixed`` (N, H, W).

    50 Adam steps at ``lr`` on NCC at ``size`` x ``size``, as RP-Net's official setting.
    """
    n = moving.shape[0]
    small = lambda x: F.interpolate(x.float().unsqueeze(1), size=(size, size), mode="area")  # noqa: E731
    m, f = small(moving), small(fixed)
    identity = torch.eye(2, 3).expand(n, 2, 3)
    delta = torch.zeros(n, 2, 3, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=lr)
    with torch.enable_grad():
        for _ in range(iterations):
            optimiser.zero_grad()
            loss = ncc_loss(warp(m, identity + delta), f) * n
            loss.backward()
            optimiser.step()
    return (identity + delta).detach()


def register_masks(support_images: torch.Tensor, support_masks: torch.Tensor, queries: torch.Tensor,
                   iterations: int = 50) -> torch.Tensor:
    """Support labels (N, H, W) warped onto the queries (N, H, W): the initial query masks."""
    theta = register_affine(support_images, queries, iterations=iterations)
    return (warp(support_masks.float().unsqueeze(1), theta).squeeze(1) > 0.5).float()
