"""The shipped checkpoints load (sha256-verified) and reproduce their manifest's slice figures.

The slice is the first 32 scenes of the world's test split, rebuilt here from their seeds (the
world is deterministic), so the check needs no data beyond the repository. It computes in float32,
as the slices were recorded (``SD3_PRECISION=float32``), whatever the Engine's default on this CPU.
"""
import pytest
import torch

from sd3core.checkpoints import read_manifest
from sd3core.evaluate import GENERATION_SLICE_FIGURES, GRAPH_SLICE_FIGURES, SLICE_SCENES, perception_report
from sd3core.models import caption_grammar, dgae, graph_diffusion
from sd3core.pipeline import Engine
from sd3core.train import heldout_loss
from sd3core.world.build import build_split

SHIPPED = read_manifest()
# dB; CLIP score points; shares to 0.01, those of sampled 3DSGs to 0.03 (sampling amplifies the last
# bits that another CPU's kernels may round differently)
TOLERANCE = {"vqvae_psnr_db": 0.05, "clip_score_true": 0.1, "clip_score_shuffled": 0.1,
             **{k: 0.03 for k in GRAPH_SLICE_FIGURES["graph_diffusion.pt"]}, "dgae_position_error_m": 0.005,
             **{k: 0.02 for keys in GENERATION_SLICE_FIGURES.values() for k in keys}}


@pytest.fixture(scope="module")
def slice_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("test_slice")
    build_split("test", SLICE_SCENES, root, size=128, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def slice_figures(slice_world):
    """name -> the figures the shipped checkpoint gives on the slice (the perception report is
    computed once for its three checkpoints)."""
    computed = {}

    def figures(name: str) -> dict:
        if name not in SHIPPED:
            pytest.skip(f"{name} is not shipped yet")
        engine = Engine(device="cpu", precision=torch.float32)  # the precision the slices were recorded in
        if name == "graph_diffusion.pt":
            return graph_diffusion.evaluate(engine.model("graph_diffusion"), str(slice_world), "test", SLICE_SCENES)
        if name == "caption_grammar.pt":
            return {f"caption_grammar_{k}": v for k, v in caption_grammar.evaluate(
                engine.model("caption_grammar"), str(slice_world), "test", SLICE_SCENES).items()}
        if name in GENERATION_SLICE_FIGURES:
            stage = name.removesuffix(".pt")
            return heldout_loss(stage, engine.model(stage), str(slice_world), "test", SLICE_SCENES)
        if name == "dgae.pt":
            return {f"dgae_{k}": v for k, v in dgae.evaluate(engine.model("dgae"), str(slice_world), "test",
                                                            SLICE_SCENES).items()}
        if "perception" not in computed:
            computed["perception"] = perception_report(engine, str(slice_world), "test", limit=SLICE_SCENES)
        return computed["perception"]
    return figures


@pytest.mark.parametrize("name", ["vqvae.pt", "detector.pt", "verifier.pt", "clip.pt", "graph_diffusion.pt", "dgae.pt",
                                  "image_diffusion.pt", "text_diffusion.pt", "caption_grammar.pt"])
def test_shipped_checkpoint_reproduces_its_slice_figures(name, slice_figures):
    figures = slice_figures(name)
    for key, expected in SHIPPED[name]["slice_check"]["metrics"].items():
        assert figures[key] == pytest.approx(expected, abs=TOLERANCE.get(key, 0.01)), key
