"""The shipped checkpoints load (sha256-verified) and reproduce their manifest's slice figures.

The slice is the first 32 scenes of the world's test split, rebuilt here from their seeds (the
world is deterministic), so the check needs no data beyond the repository.
"""
import pytest

from sd3core.checkpoints import read_manifest
from sd3core.evaluate import SLICE_SCENES, perception_report
from sd3core.pipeline import Engine
from sd3core.world.build import build_split

SHIPPED = read_manifest()
TOLERANCE = {"vqvae_psnr_db": 0.05, "clip_score_true": 0.1, "clip_score_shuffled": 0.1}  # dB; CLIP score points; shares to 0.01


@pytest.fixture(scope="module")
def slice_report(tmp_path_factory):
    if not {"vqvae.pt", "detector.pt", "clip.pt"} <= set(SHIPPED):
        pytest.skip("the three perception checkpoints are not all shipped yet")
    root = tmp_path_factory.mktemp("test_slice")
    build_split("test", SLICE_SCENES, root, size=128, workers=1, progress=False)
    return perception_report(Engine(device="cpu"), str(root), "test", limit=SLICE_SCENES)


@pytest.mark.parametrize("name", ["vqvae.pt", "detector.pt", "clip.pt"])
def test_shipped_checkpoint_reproduces_its_slice_figures(name, slice_report):
    for key, expected in SHIPPED[name]["slice_check"]["metrics"].items():
        assert slice_report[key] == pytest.approx(expected, abs=TOLERANCE.get(key, 0.01)), key
