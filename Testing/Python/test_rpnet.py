"""RP-Net network pieces: local correlation, CRE, recurrence, prototype baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lunglesion.networks.rpnet import (LIGHT_WIDTHS, ContextRelationEncoder, PrototypeNet, RPNet,
                                       local_correlation, masked_average)


def test_local_correlation_equals_unfold_reference() -> None:
    torch.manual_seed(0)
    key, query = torch.randn(2, 8, 12, 10), torch.randn(2, 8, 12, 10)
    unfolded = F.unfold(query, 11, padding=5).view(2, 8, 121, 12, 10)
    reference = (key.unsqueeze(2) * unfolded).sum(1) / 8 ** 0.5
    assert torch.allclose(local_correlation(key, query, 5), reference, atol=1e-5)


def test_cre_output_and_mask_dependence() -> None:
    torch.manual_seed(0)
    cre = ContextRelationEncoder(16, out_channels=8, radius=5).eval()
    feats = torch.randn(1, 16, 16, 16)
    a = torch.zeros(1, 1, 16, 16)
    b = a.clone()
    b[..., 4:10, 4:10] = 1
    out_a, out_b = cre(feats, a), cre(feats, b)
    assert out_a.shape == (1, 8, 16, 16)
    assert not torch.allclose(out_a, out_b)


def test_masked_average_pooling() -> None:
    feats = torch.arange(8.0).view(1, 2, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert torch.allclose(masked_average(feats, mask), torch.tensor([[0.0, 4.0]]), atol=1e-4)


def test_rpnet_recurrence_steps_and_alignment() -> None:
    torch.manual_seed(0)
    net = RPNet(LIGHT_WIDTHS, cre_channels=16, relation_channels=16)
    s_img, q = torch.randn(2, 1, 1, 64, 64), torch.randn(2, 1, 64, 64)
    s_msk = torch.zeros(2, 1, 64, 64)
    s_msk[..., 20:40, 20:40] = 1
    out = net(s_img, s_msk, q)
    assert len(out.logits) == 4 and out.logits[-1].shape == (2, 2, 64, 64)
    assert out.align_logits.shape == (2, 2, 64, 64)
    net.eval()
    with torch.no_grad():
        out = net(s_img, s_msk, q, initial_mask=s_msk[:, 0])
    assert len(out.logits) == 10 and out.align_logits is None
    # logits are cosine similarities scaled by 20
    assert float(out.logits[-1].abs().max()) <= 20.0 + 1e-4


def test_prototype_baseline_has_no_cre() -> None:
    net = PrototypeNet(LIGHT_WIDTHS).eval()
    assert not any("cre" in name for name, _ in net.named_parameters())
    with torch.no_grad():
        out = net(torch.randn(1, 3, 1, 32, 32), torch.ones(1, 3, 32, 32), torch.randn(1, 1, 32, 32))
    assert len(out.logits) == 1 and out.logits[0].shape == (1, 2, 32, 32)
