"""The benchmark harness produces every figure the bench table reports (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lunglesion.bench import bench_models, gflops, synthetic_volume
from lunglesion.io import read_image
from lunglesion.networks.catalog import get_architecture
from lunglesion.registry import get_entry, load_model

SAMPLE_CT = Path(__file__).resolve().parents[2] / "Resources" / "SampleData" / "lung1_chest_ct.nrrd"


def test_synthetic_volume_tiles_a_real_ct() -> None:
    ct = read_image(SAMPLE_CT)
    tiled = synthetic_volume(SAMPLE_CT, depth=70)
    assert tiled.array.shape == (70,) + ct.array.shape[1:]
    assert np.array_equal(tiled.array[:30], ct.array) and np.array_equal(tiled.array[30:60], ct.array[::-1])
    assert tiled.spacing == ct.spacing and tiled.origin == ct.origin


def test_gflops_counts_a_unet() -> None:
    net = get_architecture("unet").build().eval()
    # two 3x3 convs 1->16 and 16->16 at full size dominate the first level: >= 2*9*16*17*H*W flops
    assert gflops(net, 64) > 2 * 9 * 16 * 17 * 64 * 64 / 1e9


def test_bench_rows_have_every_figure() -> None:
    rows = bench_models(["unet"], ["cpu"], SAMPLE_CT, depth=32, batch=2, repeats=1, threads=1)
    row = rows[0]
    for key in ("parameters_m", "gflops", "ms_per_slice_b1", "slices_per_s_batched",
                "end_to_end_s_512x512x32", "peak_rss_mb"):
        assert row[key] > 0, key
    assert row["model"] == "unet" and row["device"] == "cpu" and row["input_px"] == 352
    assert row["flip_tta"]  # timed as registered: twice the network work of one pass


def test_bench_times_an_ensemble_as_the_sum_of_its_members() -> None:
    ensemble, unet = bench_models(["covid-ensemble", "unet"], ["cpu"], None, batch=2, repeats=1, threads=1)
    assert ensemble["parameters_m"] > 2.5 * unet["parameters_m"]
    members = get_entry("covid-ensemble").members  # each runs at its own training size, with flip TTA
    expected = sum(gflops(load_model(m, "cpu", tta=True)[0], int(get_entry(m).input["size"])) for m in members)
    assert ensemble["gflops"] == pytest.approx(expected, rel=0.02)


def test_bench_times_fewshot_models_and_untrained_architectures() -> None:
    fewshot, paper = bench_models(["rpnet", "bsnet"], ["cpu"], SAMPLE_CT, depth=8, batch=2, repeats=1, threads=1)
    assert fewshot["input_px"] == 128 and fewshot["end_to_end_s_512x512x8"] > 0 and fewshot["weights"] == "trained"
    assert paper["weights"].startswith("random") and paper["parameters_m"] > 40
    assert "end_to_end_s_512x512x8" not in paper  # no trained weights: the network alone is timed


def test_softmask_bench_times_a_volume_with_drawn_lesions() -> None:
    from lunglesion.bench import bench_softmask

    row = bench_softmask(SAMPLE_CT, depth=40, lesions=5)
    assert row["lesions"] == 5 and row["softmask_s_512x512x40"] > 0
