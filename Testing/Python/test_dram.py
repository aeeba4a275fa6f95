"""dRAM weak supervision: interval-hinge loss, neighbour attention, dense CRF, weak labels, simulation."""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest
import torch

from lunglesion.errors import InputError
from lunglesion.weak import ctss
from lunglesion.weak.attention import NeighbourAttention, neighbour_offsets
from lunglesion.weak.crf import dense_crf
from lunglesion.weak.losses import interval_hinge_loss, refinement_loss, target_interval
from lunglesion.weak.regions import lung2d_names, lung_parts_of, lung_regions_2d
from lunglesion.weak.weaklabels import derive_weak_labels, read_weak_labels


def test_interval_hinge_hand_computed() -> None:
    pred = torch.tensor([0.30, 0.15, 0.00, 0.90])
    low = torch.tensor([0.10, 0.10, 0.05, 0.75])
    high = torch.tensor([0.20, 0.20, 0.25, 1.00])
    # (0.30-0.15)^2 - 0.05^2 = 0.02 ; inside -> 0 ; (0-0.15)^2 - 0.1^2 = 0.0125 ; inside -> 0
    assert interval_hinge_loss(pred, low, high).item() == pytest.approx(0.02 + 0.0125, abs=1e-7)
    freq = torch.tensor([0.1, 0.5, 0.5, 0.9])  # clamped to 0.2 and 0.8
    assert interval_hinge_loss(pred, low, high, freq).item() == pytest.approx(0.02 / 0.2 + 0.0125 / 0.5, abs=1e-6)


def test_target_interval_follows_intensity_prior() -> None:
    assert target_interval(0.05, 0.25, 0.10) == pytest.approx((0.09, 0.11))
    assert target_interval(0.05, 0.25, 0.60) == pytest.approx((0.05, 0.25))  # r_K above: CTSS interval
    assert target_interval(0.25, 0.50, 0.02) == pytest.approx((0.01, 0.03))  # r_K below: r_K +- bw


def test_refinement_loss_balanced_targets() -> None:
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:6, 2:6] = 1
    prior = region.clone()
    dram = torch.full((1, 1, 8, 8), 5.0)
    good = torch.where(region > 0, 8.0, -8.0)
    bad = -good
    zero = torch.tensor([False])
    assert refinement_loss(good, dram, region, prior, zero) < 0.05 < refinement_loss(bad, dram, region, prior, zero)
    # a region labelled lesion-free wants the refined map off everywhere
    assert refinement_loss(good, dram, region, prior, torch.tensor([True])) > 1.0


def _attention_loop(module: NeighbourAttention, features: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    f = features[0].movedim(0, -1)
    c = cam[0, 0]
    shape = c.shape
    offsets = neighbour_offsets(len(shape))
    out = torch.zeros(shape)
    for index in itertools.product(*(range(n) for n in shape)):
        theta = module.theta(f[index])
        scores, values = [], []
        for offset in offsets:
            j = tuple(i + o for i, o in zip(index, offset))
            if all(0 <= a < n for a, n in zip(j, shape)):
                scores.append(torch.relu(theta @ module.phi(f[j])) / math.sqrt(len(offsets)))
                values.append(module.value(c[j].view(1)))
        weights = torch.softmax(torch.stack(scores), 0)
        out[index] = module.out(sum(w * v for w, v in zip(weights, values)))[0]
    return out


@pytest.mark.parametrize("ndim,count", [(3, 18), (2, 8)])
def test_attention_matches_direct_loop(ndim: int, count: int) -> None:
    torch.manual_seed(0)
    assert len(neighbour_offsets(ndim)) == count
    shape = (4, 5, 3)[:ndim]
    module = NeighbourAttention(ndim, in_features=5)
    features, cam = torch.randn(1, 5, *shape), torch.randn(1, 1, *shape)
    with torch.no_grad():
        fast = module(features, cam)[0, 0]
        slow = _attention_loop(module, features, cam)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_crf_cleans_noisy_square() -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((48, 48), bool)
    truth[14:34, 14:34] = True
    image = np.where(truth, 0.7, 0.2) + rng.normal(0, 0.03, truth.shape)
    prob = np.clip(np.where(truth, 0.7, 0.3) + rng.normal(0, 0.3, truth.shape), 0.01, 0.99)
    refined = dense_crf(torch.from_numpy(prob), torch.from_numpy(image)).numpy()

    def iou(a: np.ndarray) -> float:
        return (a & truth).sum() / (a | truth).sum()

    before, after = iou(prob > 0.5), iou(refined > 0.5)
    assert before < 0.8 and after > 0.95


def test_ctss_tables() -> None:
    assert ctss.fraction_to_score(0.0) == 0
    assert ctss.fraction_to_score(0.05) == 1 and ctss.fraction_to_score(0.051) == 2
    assert ctss.fraction_to_score(0.8) == 5
    assert ctss.fraction_to_score(0.005, "paper_code") == 1
    assert ctss.score_to_interval(3) == (0.25, 0.5)
    with pytest.raises(InputError):
        ctss.score_to_interval(6)


def test_weaklabels_on_real_slices(shared_data, tmp_path) -> None:
    folder = shared_data / "covid_semiseg" / "train"
    stems = ["0", "10", "13"]
    out = tmp_path / "scores.csv"
    rows = derive_weak_labels(folder, out, stems=stems)
    assert {r["case"] for r in rows} == set(stems)
    assert {r["region"] for r in rows} == {"lung1", "lung2"}
    # slice 0 is densely infected, slice 10 mildly (see the masks)
    by_case = {(r["case"], r["region"]): r for r in rows}
    assert max(by_case[("0", n)]["score"] for n in ("lung1", "lung2")) >= 4
    assert max(by_case[("10", n)]["score"] for n in ("lung1", "lung2")) <= 2
    labels = read_weak_labels(out)
    for (case, region), label in labels.items():
        fraction = by_case[(case, region)]["fraction"]
        assert label.low <= fraction <= label.high
    interval_csv = tmp_path / "intervals.csv"
    derive_weak_labels(folder, interval_csv, kind="interval", stems=stems)
    with interval_csv.open() as f:
        assert next(csv.reader(f)) == ["case", "region", "low", "high"]
    assert read_weak_labels(interval_csv)[("0", "lung1")].high == labels[("0", "lung1")].high


def test_lung_regions_cover_the_lungs(shared_data) -> None:
    from lunglesion.data.labelled2d import read_grey_unit

    image = read_grey_unit(shared_data / "covid_semiseg" / "train" / "images" / "13.jpg")
    regions = lung_regions_2d(image)
    sizes = [(regions == v).mean() for v in (1, 2)]
    assert all(0.1 < s < 0.45 for s in sizes)
    assert image[regions > 0].mean() < image[regions == 0].mean()  # lungs are the dark part


def test_lung_bands_split_each_lung_in_equal_parts(shared_data) -> None:
    from lunglesion.data.labelled2d import read_grey_unit

    image = read_grey_unit(shared_data / "covid_semiseg" / "train" / "images" / "13.jpg")
    lungs = lung_regions_2d(image)
    for parts in (2, 3):
        bands = lung_regions_2d(image, parts)
        names = lung2d_names(parts)
        assert set(np.unique(bands)) == {0, *names} and len(names) == 2 * parts
        for lung in (1, 2):
            values = [lung_value for lung_value, name in names.items() if name.startswith(f"lung{lung}_")]
            assert np.array_equal(np.isin(bands, values), lungs == lung)  # the bands tile their lung
            areas = [(bands == v).sum() for v in values]
            assert max(areas) / min(areas) < 1.1
    assert lung_parts_of({"lung1", "lung2"}) == 1 and lung_parts_of({"lung1_2", "lung2_1"}) == 2
    assert lung_parts_of({"lung2_3"}) == 3
    with pytest.raises(InputError, match="lung1_1"):
        lung_parts_of({"left_upper"})
    with pytest.raises(InputError, match="lung parts"):
        lung_regions_2d(image, 5)


def test_weaklabels_cli_slices_and_volumes(shared_data, tmp_path, capsys) -> None:
    from lunglesion.cli.main import main

    out = tmp_path / "bands.csv"
    assert main(["weaklabels", str(shared_data / "covid_semiseg" / "train"), "-o", str(out),
                 "--table", "paper_code", "--kind", "interval", "--lung-parts", "2"]) == 0
    printed = capsys.readouterr().out
    assert "200 regions of 50 cases" in printed
    # about a quarter of the lesion (dense consolidation against the chest wall) lies outside the lung regions
    coverage = int(printed.split("% of the lesion pixels lie in the scored regions")[0].split()[-1])
    assert 65 <= coverage <= 90
    labels = read_weak_labels(out)
    assert {region for _, region in labels} == {"lung1_1", "lung1_2", "lung2_1", "lung2_2"}
    assert {(label.low, label.high) for label in labels.values()} <= set(ctss.TABLES["paper_code"].values())
    # volumes: the chest CT's nodule lies in one lung third, every other third scores 0
    for folder, source in (("volumes", "lung1_image.nrrd"), ("masks", "lung1_label.nrrd")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "lung1.nrrd").symlink_to(shared_data / "chest_ct" / source)
    out = tmp_path / "volume.csv"
    assert main(["weaklabels", str(tmp_path / "volumes"), "--masks", str(tmp_path / "masks"), "-o", str(out)]) == 0
    scores = {region: label.score for (case, region), label in read_weak_labels(out).items()}
    assert len(scores) == 6 and sorted(scores.values()) == [0, 0, 0, 0, 0, 1]


def test_train_cli_runs_the_chain_on_the_regions_of_the_csv(shared_data, tmp_path, capsys) -> None:
    import json

    from lunglesion.cli.main import main

    folder = shared_data / "covid_semiseg" / "train"
    derive_weak_labels(folder, tmp_path / "scores.csv", stems=["0", "13"], lung_parts=2, lung_field="learned")
    settings = {"chunk": 32, "base": 2, "grid": 16, "epochs_dram": 1, "epochs_cam": 1, "epochs_final": 1,
                "final_size": 32, "batch": 4, "lung_field": "learned"}
    assert main(["train", "--model", "dram", "--data", str(folder), "--weak-labels", str(tmp_path / "scores.csv"),
                 "--out", str(tmp_path / "run"), "--device", "cpu", "--dram-settings", json.dumps(settings)]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["lung_parts"] == 2 and config["device"] == "cpu (cpu)" and config["base"] == 2
    assert config["lung_field"] == "learned"
    assert all((tmp_path / "run" / stage / "model.pt").exists() for stage in ("dram", "cam", "final_dram", "final_cam"))
    # self-training on unlabelled slices: a teacher this weak marks no lesion, which is said in one line
    unlabeled = tmp_path / "unlabeled" / "images"
    unlabeled.mkdir(parents=True)
    for image in sorted((shared_data / "covid_semiseg" / "unlabeled" / "images").glob("*radiopaedia*"))[:6]:
        (unlabeled / image.name).symlink_to(image)
    assert main(["train", "--model", "dram", "--data", str(folder), "--weak-labels", str(tmp_path / "scores.csv"),
                 "--out", str(tmp_path / "run"), "--device", "cpu", "--dram-settings", json.dumps(settings),
                 "--unlabeled", str(unlabeled.parent), "--resume"]) == 2
    assert "too few to self-train on" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["self_rounds"] == 2
    pseudo = np.load(tmp_path / "run" / "pseudo" / "0.npz")["crf_dram"]
    assert pseudo.shape == (256, 256) and pseudo.any()


def test_self_training_learns_the_teachers_masks_not_the_true_ones(shared_data, tmp_path) -> None:
    from lunglesion.networks.unet import UNet
    from lunglesion.weak.selftrain import self_train

    train = shared_data / "covid_semiseg" / "train" / "images"
    unlabeled = sorted((shared_data / "covid_semiseg" / "unlabeled" / "images").glob("*radiopaedia*"))[:30]
    images = {p.stem: p for p in [train / "0.jpg", train / "13.jpg", *unlabeled]}
    teacher = UNet(1, 1, base=4, depth=2)
    teacher_weights = tmp_path / "teacher.pt"
    torch.save(teacher.state_dict(), teacher_weights)
    with torch.no_grad():  # a teacher that marks every pixel as lesion
        for parameter in teacher.parameters():
            parameter.zero_()
        teacher.head.bias.fill_(10.0)
    messages: list[str] = []
    checkpoint = self_train(teacher, teacher_weights, images, tmp_path / "self", size=32, epochs=1, per_scan=4,
                            log=messages.append)
    masks = sorted((tmp_path / "self" / "data" / "masks").iterdir())
    scans = {p.stem.rsplit("_", 1)[0] for p in unlabeled}
    assert len(masks) == 2 + 4 * len(scans)  # both training slices, 4 per unlabelled scan
    from PIL import Image as PILImage
    assert all(np.asarray(PILImage.open(m)).all() for m in masks)  # the teacher's masks, never the true ones
    assert checkpoint.exists() and (tmp_path / "self" / "val_metrics.json").exists()
    assert any("initialised" in m for m in messages)
    messages.clear()
    self_train(teacher, teacher_weights, images, tmp_path / "self", size=32, epochs=1, log=messages.append)
    assert messages == ["self: finished earlier"]


def test_interval_threshold_puts_the_marked_share_in_the_interval() -> None:
    from lunglesion.weak.losses import interval_threshold

    values = torch.linspace(0, 1, 1001)  # 50 % at or above 0.5
    assert interval_threshold(values, 0.25, 0.75).item() == 0.5  # already inside: unchanged
    below = interval_threshold(values, 0.75, 1.0)  # too little marked: lowered to mark 75 %
    assert (values >= below).float().mean().item() == pytest.approx(0.75, abs=0.002)
    above = interval_threshold(values, 0.0, 0.05)  # too much: raised to mark 5 %
    assert (values >= above).float().mean().item() == pytest.approx(0.05, abs=0.002)
    assert not (values >= interval_threshold(values, 0.0, 0.0)).any()  # score 0: nothing


def test_teacher_masks_fitted_to_weak_labels_on_a_real_slice(shared_data) -> None:
    from lunglesion.data.labelled2d import read_grey_unit
    from lunglesion.weak.selftrain import fitted_mask
    from lunglesion.weak.weaklabels import WeakLabel

    image = read_grey_unit(shared_data / "covid_semiseg" / "train" / "images" / "13.jpg")
    probability = np.random.default_rng(0).random(image.shape).astype(np.float32)
    labels = {"lung1_1": WeakLabel(0.05, 0.25, 2), "lung1_2": WeakLabel(0.0, 0.0, 0),
              "lung2_3": WeakLabel(0.75, 1.0, 5)}
    mask = fitted_mask(probability, image, labels, lung_parts=3)
    regions = lung_regions_2d(image, 3)
    names = {name: value for value, name in lung2d_names(3).items()}
    assert mask[regions == names["lung1_1"]].mean() == pytest.approx(0.25, abs=0.01)  # 50 % cut to the bound
    assert not mask[regions == names["lung1_2"]].any()
    assert mask[regions == names["lung2_3"]].mean() == pytest.approx(0.75, abs=0.01)
    unscored = ~np.isin(regions, [names[n] for n in labels])
    assert np.array_equal(mask[unscored], probability[unscored] >= 0.5)  # elsewhere the plain 0.5 threshold


def test_bad_weak_label_file(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("case,region,score\n1,lung1,7\n")
    with pytest.raises(InputError, match="line 2"):
        read_weak_labels(bad)


def test_fraction_threshold_and_calibration() -> None:
    from lunglesion.weak.losses import fraction_threshold
    from lunglesion.weak.pipeline import calibrate

    values = torch.linspace(0, 0.4, 101)  # a soft map: nothing above 0.5
    t = fraction_threshold(values, 0.1)
    assert (values >= t).float().mean().item() == pytest.approx(0.1, abs=0.02)
    assert fraction_threshold(torch.tensor([0.99, 0.98, 0.02, 0.01]), 0.25).item() == 0.5  # sharp map: 0.5
    prob = values.view(1, 1, 101)
    region = torch.ones_like(prob)
    calibrated = calibrate(prob, region, torch.tensor([0.2]))
    assert (calibrated > 0.5).float().mean().item() == pytest.approx(0.2, abs=0.02)


def test_simulated_ground_glass_in_real_lungs(shared_data) -> None:
    from lunglesion.io import read_image, read_labelmap
    from lunglesion.weak.regions import regions_from_lobes
    from lunglesion.weak.simulate import simulate_ground_glass

    import json

    ct = read_image(shared_data / "totalseg" / "ct.nii.gz")
    class_map = json.loads((shared_data / "totalseg" / "class_maps.json").read_text())["total_v1"]
    regions, names = regions_from_lobes(read_labelmap(shared_data / "totalseg" / "ct_seg_total_v1.nii.gz"),
                                        {int(k): v for k, v in class_map.items()})
    assert set(np.unique(regions.array)) >= {0, 2, 5} and names[5] == "right_lower"
    lungs = regions.array > 0
    sim, mask = simulate_ground_glass(ct, lungs, count=4, seed=3)
    assert mask.any() and not (mask.astype(bool) & ~lungs).any()
    core = sim.array[mask > 0]
    assert -760 < np.median(core) < -250  # ground glass, not air, not soft tissue
    assert np.array_equal(sim.array[~lungs], np.asarray(ct.array, np.float32)[~lungs])
    assert (sim.array >= np.asarray(ct.array, np.float32) - 1e-3).all()  # only brightens


def test_chain_runs_and_resumes_on_real_slices(shared_data, tmp_path) -> None:
    from lunglesion.data.labelled2d import read_grey_unit
    from lunglesion.weak.pipeline import case_2d, run_chain

    folder = shared_data / "covid_semiseg" / "train"
    stems = ["0", "13"]
    derive_weak_labels(folder, tmp_path / "scores.csv", stems=stems)
    labels = read_weak_labels(tmp_path / "scores.csv")
    cases = [case_2d(s, read_grey_unit(folder / "images" / f"{s}.jpg")) for s in stems]
    budget = {"chunk": 32, "base": 2, "grid": 16, "epochs_dram": 1, "epochs_cam": 1, "epochs_final": 1,
              "final_size": 32, "batch": 4}
    messages: list[str] = []
    paths = run_chain(cases, labels, tmp_path / "run", budget=budget, log=messages.append)
    assert all(p.exists() for p in paths.values())
    pseudo = np.load(tmp_path / "run" / "pseudo" / "0.npz")
    assert {"cam", "dram", "refined", "crf_dram", "crf_cam"} <= set(pseudo.files)
    assert pseudo["dram"].shape == (256, 256) and pseudo["dram"].any()  # slice 0 is heavily infected
    messages.clear()
    run_chain(cases, labels, tmp_path / "run", budget=budget, log=messages.append)
    assert sum("finished earlier" in m for m in messages) == 4 and not any("epoch 1/" in m for m in messages)
