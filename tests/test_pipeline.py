"""The Engine: lazy, verified model loading and the image ⇄ token arrows, with bad input refused."""
import json
import shutil

import numpy as np
import pytest
import torch

from sd3core.pipeline import Engine, check_image, pick_device, pick_precision
from sd3core.world.build import read_split


def test_device_override(monkeypatch):
    monkeypatch.setenv("SD3_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_precision_override_and_defaults(monkeypatch):
    monkeypatch.setenv("SD3_PRECISION", "float32")
    assert pick_precision(torch.device("cuda")) == torch.float32
    monkeypatch.setenv("SD3_PRECISION", "bfloat16")
    assert pick_precision(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setenv("SD3_PRECISION", "half")
    with pytest.raises(ValueError, match="SD3_PRECISION: got 'half'"):
        pick_precision(torch.device("cpu"))
    monkeypatch.delenv("SD3_PRECISION")
    assert pick_precision(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert pick_precision(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert pick_precision(torch.device("cpu")) == torch.float32
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")   # a torch without the private probe
    assert pick_precision(torch.device("cpu")) == torch.float32
    assert Engine(device="cpu", precision=torch.float32).precision == torch.float32
    with pytest.raises(ValueError, match="precision: got torch.float16"):
        Engine(device="cpu", precision=torch.float16)


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_tokenize_then_detokenize_round_trip(precision, tiny_checkpoints, tiny_world):
    engine = Engine(tiny_checkpoints, device="cpu", precision=precision)
    images = [e["rgb"] for e in read_split(tiny_world, "test")][:2]
    tokens = engine.tokenize(images)
    assert tokens.shape == (2, 8, 8) and tokens.dtype == torch.int64
    out = engine.detokenize(tokens)
    assert len(out) == 2 and out[0].shape == (64, 64, 3) and out[0].dtype == np.uint8
    assert engine.model("vqvae") is engine.model("vqvae")  # loaded once


def test_engine_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="vqvae.pt"):
        Engine(tmp_path, device="cpu").tokenize([np.zeros((8, 8, 3), np.uint8)])


@pytest.mark.parametrize("image, words", [
    ([[0, 0, 0]], "expected an \\(H, W, 3\\) uint8 numpy array"),
    (np.zeros((4, 4, 5), np.uint8), "got shape"),
    (np.zeros((4, 4, 3), np.float32), "expected uint8"),
    (np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (4097, 4096, 3)), "over the limit"),
])
def test_bad_images_are_refused_with_a_reason(image, words):
    with pytest.raises(ValueError, match=words):
        check_image(image)


def test_bad_tokens_are_refused(tiny_checkpoints):
    engine = Engine(tiny_checkpoints, device="cpu")
    with pytest.raises(ValueError, match="expected \\(B, 8, 8\\)"):
        engine.detokenize(torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="values must lie in 0..999"):
        engine.detokenize(torch.full((1, 8, 8), 1000))


def test_detect_reads_any_size_image_into_a_vsg(tiny_checkpoints, tiny_world):
    engine = Engine(tiny_checkpoints, device="cpu")
    image = next(read_split(tiny_world, "test"))["rgb"]
    small = image[::2, ::2]  # the engine resizes to the detector's input size
    for dets in engine.detect([image, small], threshold=0.0):
        assert dets.graph.kind == "vsg" and len(dets.depth) == len(dets.graph.objects) == len(dets.scores)
    with pytest.raises(ValueError, match="empty list"):
        engine.detect([])


def test_perception_report_and_sheet(tiny_checkpoints, tiny_world):
    from sd3core.evaluate import perception_report, perception_sheet
    engine = Engine(tiny_checkpoints, device="cpu")
    report = perception_report(engine, str(tiny_world), "test", limit=4)
    assert report["scenes"] == 4 and report["vqvae_psnr_db"] > 0
    assert {"detector_map50", "detector_colour_acc", "vqvae_same_objects", "clip_i2t_recall_at_1",
            "clip_score_true", "clip_score_shuffled"} <= set(report)
    images = [e["rgb"] for e in read_split(tiny_world, "test")][:3]
    sheet = perception_sheet(engine, images)
    assert sheet.width > 3 * 256 and sheet.height > 3 * 256


def test_slice_checks_are_recorded_in_each_checkpoints_entry(tiny_checkpoints, tiny_world, tmp_path):
    from sd3core.checkpoints import load_checkpoint, read_manifest
    from sd3core.evaluate import SLICE_FIGURES, perception_report, record_slice_checks
    directory = shutil.copytree(tiny_checkpoints, tmp_path / "ckpt")
    report = perception_report(Engine(directory, device="cpu"), str(tiny_world), "test", limit=4)
    record_slice_checks(report, "the command", directory=directory)
    entries = read_manifest(directory)
    for name, keys in SLICE_FIGURES.items():
        expected = {"command": "the command", "metrics": {k: report[k] for k in keys}}
        assert json.dumps(entries[name]["slice_check"]) == json.dumps(expected)  # NaN-safe equality
        assert entries[name]["command"] == "fixture"   # the rest of the entry is kept
        load_checkpoint(name, directory)                 # and the checksum still verifies


def test_clip_score_pairs_images_with_captions(tiny_checkpoints, tiny_world):
    engine = Engine(tiny_checkpoints, device="cpu")
    example = next(read_split(tiny_world, "test"))
    scores = engine.clip_score([example["rgb"]] * 2, [example["record"]["captions"][0]["text"], "a red cube"])
    assert len(scores) == 2 and all(0.0 <= s <= 100.0 for s in scores)
    with pytest.raises(ValueError, match="expected one each"):
        engine.clip_score([example["rgb"]], ["one", "two"])
