"""segment_with_support with the registered RP-Net weights on real data."""

from __future__ import annotations

import numpy as np
import pytest

from lunglesion.data.labelled2d import load_labelled_set
from lunglesion.fewshot import segment_with_support
from lunglesion.image import image_2d
from lunglesion.metrics import dice as _dice




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
    assert steps and 0.0 <= steps[-1] <= 1.0


@pytest.mark.xfail(strict=True, reason="the light weights trained here (~8 CPU-min) over-segment; "
                                       "they do not yet beat copy-nearest with a tuned range (Dice 0.75)")
def test_interactive_nodule_beats_copy_nearest(lung1) -> None:
    image, label = lung1
    truth = label.array > 0
    partial = np.zeros_like(label.array)
    partial[33] = label.array[33]
    pred = segment_with_support(image, [(image, label.with_array(partial))]).array > 0
    rest = np.ones(48, bool)
    rest[33] = False
    assert _dice(pred[rest], truth[rest]) > 0.77


def test_2d_query_from_another_slice(shared_data) -> None:
    samples = load_labelled_set(shared_data / "covid_semiseg" / "train")[10:12]
    as_image = lambda a: image_2d((a * 255).astype(np.uint8))  # noqa: E731
    query = as_image(samples[1].image)
    out = segment_with_support(query, [(as_image(samples[0].image), image_2d(samples[0].mask))])
    assert out.array.shape == query.array.shape and out.array.dtype == np.uint8
    assert _dice(out.array > 0, samples[1].mask > 0) > 0.25
