"""Metrics against hand-computed cases (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lunglesion.errors import DimensionError, InputError
from lunglesion.metrics import (asd, dice, e_phi, evaluate_pair, hd95, iou, mae, precision, s_alpha,
                                sensitivity, specificity, summarise)
from lunglesion.metrics.structure import e_phi_binary

PRED = np.array([[1, 1, 0, 0]], dtype=bool)
TARGET = np.array([[1, 0, 1, 0]], dtype=bool)  # TP=1, FP=1, FN=1, TN=1


def test_overlap_metrics_by_hand() -> None:
    assert dice(PRED, TARGET) == pytest.approx(0.5)  # 2*1 / (2 + 2)
    assert iou(PRED, TARGET) == pytest.approx(1 / 3)  # 1 / (1 + 1 + 1)
    assert sensitivity(PRED, TARGET) == pytest.approx(0.5)  # 1 / (1 + 1)
    assert specificity(PRED, TARGET) == pytest.approx(0.5)  # 1 / (1 + 1)
    assert precision(PRED, TARGET) == pytest.approx(0.5)  # 1 / (1 + 1)
    assert mae(np.array([[0.2, 0.9]]), np.array([[0, 1]])) == pytest.approx(0.15)  # (0.2 + 0.1) / 2


def test_empty_conventions() -> None:
    empty = np.zeros((3, 3), dtype=bool)
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    assert math.isnan(sensitivity(empty, empty)) and math.isnan(precision(empty, empty))
    assert specificity(empty, empty) == 1.0
    one = empty.copy()
    one[1, 1] = True
    assert dice(one, empty) == 0.0 and iou(empty, one) == 0.0
    assert hd95(empty, empty) == 0.0 and math.isnan(hd95(one, empty)) and math.isnan(asd(empty, one))


def test_s_alpha_edge_cases() -> None:
    pred = np.array([[0.0, 0.5], [0.5, 0.0]])  # mean 0.25
    assert s_alpha(pred, np.zeros((2, 2))) == pytest.approx(0.75)  # 1 - mean(pred)
    assert s_alpha(pred, np.ones((2, 2))) == pytest.approx(0.25)  # mean(pred)
    gt = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    assert s_alpha(gt.astype(float), gt) == pytest.approx(1.0)  # a perfect map scores 1


def test_s_alpha_by_hand() -> None:
    # gt = [[1,0],[0,0]], pred = [[0.5,0],[0,0]]: u = 0.25; O_fg = 2*0.5/(0.25+1+0) = 0.8;
    # O_bg over 1-pred = [1,1,1] = 2/2 = 1; S_object = 0.25*0.8 + 0.75*1 = 0.95.
    # Centroid X = Y = 1: four 1x1 quadrants of weight 1/4, each ssim = 1 (alpha = beta = 0).
    # S = 0.5*0.95 + 0.5*1 = 0.975
    assert s_alpha(np.array([[0.5, 0.0], [0.0, 0.0]]), np.array([[1, 0], [0, 0]])) == pytest.approx(0.975)
    # gt = [[1,1,0,0]], pred = [[1,.5,.5,0]]: fg [1,.5] mean .75, std(N-1) = sqrt(.125);
    # O_fg = 1.5/(.5625+1+sqrt(.125)); bg 1-pred = [.5,1] gives the same; S_object = O_fg.
    # Centroid X = round(1.5) = 2 (half up), Y = 1: w = (.5, .5, 0, 0); quadrant 1 has sigma_xy = 0
    # and beta > 0 -> 0, quadrant 2 likewise -> S_region = 0.  S = 0.5 * O_fg.
    expected = 0.5 * 1.5 / (0.5625 + 1 + math.sqrt(0.125))
    assert s_alpha(np.array([[1.0, 0.5, 0.5, 0.0]]), np.array([[1, 1, 0, 0]])) == pytest.approx(expected)


def _enhanced(f: float, g: float, mu_f: float, mu_g: float) -> float:
    a, b = f - mu_f, g - mu_g
    return (2 * a * b / (a * a + b * b) + 1) ** 2 / 4


def test_e_phi_by_hand() -> None:
    gt = np.array([[1, 0], [0, 0]])
    # fm = [[1,1],[0,0]]: mu_fm = .5, mu_gt = .25; TP term (1,1): align = .75/.8125 -> 0.924556;
    # FP (1,0): align = -0.8 -> 0.01; two TN (0,0): align = 0.8 -> 0.81 each; sum / (N-1 = 3).
    two = (0.924556213 + 0.01 + 2 * 0.81) / 3
    assert e_phi_binary(np.array([[1, 1], [0, 0]]), gt) == pytest.approx(two, abs=1e-6)
    assert two == pytest.approx((_enhanced(1, 1, .5, .25) + _enhanced(1, 0, .5, .25)
                                 + 2 * _enhanced(0, 0, .5, .25)) / 3)
    # Mean over t = 1 - k/255: pred [[.802,.41],[0,0]]. k = 0..50 (t >= .802): empty map, every
    # term 0.25 -> 1/3; k = 51..150: map == gt, every term 1 -> 4/3; k = 151..255: `two`.
    expected = (51 / 3 + 100 * 4 / 3 + 105 * two) / 256
    assert e_phi(np.array([[0.802, 0.41], [0.0, 0.0]]), gt) == pytest.approx(expected, abs=1e-6)
    # Empty GT: E = sum(1 - FM) / (N - 1); full GT: sum(FM) / (N - 1).
    assert e_phi_binary(np.array([[1, 0], [0, 0]]), np.zeros((2, 2))) == pytest.approx(3 / 3)
    assert e_phi_binary(np.array([[1, 0], [0, 0]]), np.ones((2, 2))) == pytest.approx(1 / 3)


def test_surface_distances_by_hand() -> None:
    # One row: every mask pixel is surface. pred = cols 1-3, target = cols 4-6, column spacing 2 mm.
    # pred->target: 3,2,1 px = 6,4,2 mm; target->pred: 2,4,6 mm. ASD = 4; HD95 = percentile95
    # of [2,4,6] = 4 + 0.9*2 = 5.8.
    pred = np.zeros((1, 10), dtype=bool)
    target = pred.copy()
    pred[0, 1:4] = True
    target[0, 4:7] = True
    assert asd(pred, target, spacing=(1.0, 2.0)) == pytest.approx(4.0)
    assert hd95(pred, target, spacing=(1.0, 2.0)) == pytest.approx(5.8)


def test_evaluate_pair_and_summarise() -> None:
    prob = np.array([[0.9, 0.6, 0.2, 0.1]])
    r = evaluate_pair(prob, TARGET, threshold=0.5, spacing=(1.0, 1.0))
    assert r["dice"] == pytest.approx(0.5) and r["mae"] == pytest.approx((0.1 + 0.6 + 0.8 + 0.1) / 4)
    assert {"s_alpha", "e_phi", "hd95", "asd"} <= set(r)
    volume = evaluate_pair(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), spacing=(5.0, 1.0, 1.0))
    assert "s_alpha" not in volume and volume["dice"] == 1.0
    s = summarise([{"dice": 1.0, "precision": float("nan")}, {"dice": 0.5, "precision": 0.25}])
    assert s == {"dice": 0.75, "precision": 0.25}


def test_bad_input() -> None:
    with pytest.raises(InputError):
        evaluate_pair(np.array([[1.5]]), np.array([[1]]))
    with pytest.raises(InputError):
        dice(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(DimensionError):
        s_alpha(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
