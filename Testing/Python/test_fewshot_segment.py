"""segment_with_support with the registered RP-Net weights on real data."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lunglesion.fewshot.segment import segment_with_support
from lunglesion.image import image_2d
from lunglesion.io.convert import from_sitk
from lunglesion.data.labelled2d import load_labelled_set


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def lung1(shared_data):
    image = from_sitk(sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_image.nrrd")))
    label = from_sitk(sitk.ReadImage(str(shared_data / "chest_ct" / "lung1_label.nrrd")))
    return image, label


def test_interactive_nodule_one_labelled_slice(lung1) -> None:
    image, label = lung1
    truth = label.array > 0
    partial = np.zeros_like(label.array)
    partial[33] = label.array[33] * 3  # any label value
    steps = []
    out = segment_with_support(image, [(image, label.with_array(partial))], label=3,
                               progress=lambda f, m: steps.append(f))
    assert out.same_geometry(image) and out.array.dtype == np.uint8 and set(np.unique(out.array)) <= {0, 3}
    assert np.array_equal(out.array[33] > 0, truth[33])  # the labelled slice is kept exactly
    pred = out.array > 0
    assert not pred[:28].any() and not pred[40:].any()  # it stops where the nodule ends
    rest = np.ones(48, bool)
    rest[33] = False
    assert _dice(pred[rest], truth[rest]) > 0.5
    assert steps and steps[-1] == pytest.approx(1.0, abs=0.5)


def test_2d_query_from_another_patient(shared_data) -> None:
    samples = load_labelled_set(shared_data / "covid_semiseg" / "train", stems=["2", "3", "4"])
    as_image = lambda a: image_2d((a * 255).astype(np.uint8))  # noqa: E731
    support = [(as_image(s.image), image_2d(s.mask)) for s in samples[:2]]
    query = as_image(samples[2].image)
    out = segment_with_support(query, support)
    assert out.array.shape == query.array.shape and out.array.dtype == np.uint8
    assert _dice(out.array > 0, samples[2].mask > 0) > 0.2
