"""Loss functions against hand-computed cases."""

from __future__ import annotations

import torch

from lunglesion.losses import bce_dice_loss, boundary_weights, structure_loss, weighted_bce_dice_loss


def test_boundary_weights_hand_case() -> None:
    # A 1-pixel foreground in a 3x3 image, kernel 3: the local mean counts only valid pixels
    # (count_include_pad=False). At the centre the mean is 1/9 -> w = 1 + 5 * |1/9 - 1| = 1 + 40/9.
    # At a corner the window holds 4 pixels, one of them foreground -> w = 1 + 5/4.
    target = torch.zeros(1, 1, 3, 3)
    target[0, 0, 1, 1] = 1
    w = boundary_weights(target, kernel=3)
    assert torch.isclose(w[0, 0, 1, 1], torch.tensor(1 + 40 / 9))
    assert torch.isclose(w[0, 0, 0, 0], torch.tensor(1 + 5 / 4))
    # An edge pixel sees 6 pixels, one foreground -> 1 + 5/6.
    assert torch.isclose(w[0, 0, 0, 1], torch.tensor(1 + 5 / 6))


def test_losses_reward_the_right_answer() -> None:
    target = torch.zeros(2, 1, 32, 32)
    target[:, :, 8:20, 10:24] = 1
    good = (target * 2 - 1) * 8
    bad = -good
    for loss in (structure_loss, bce_dice_loss, weighted_bce_dice_loss):
        assert loss(good, target) < 0.05
        assert loss(bad, target) > 1.0
