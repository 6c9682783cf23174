"""Shared fixtures: a tiny built world, and checkpoints trained on it for two steps each; the
studio's example cache in a temporary folder."""
import shutil

import pytest

from sd3core.checkpoints import read_manifest, record_checkpoint
from sd3core.train import TrainArgs, train
from sd3core.world.build import build_split


@pytest.fixture(scope="session", autouse=True)
def examples_cache(tmp_path_factory):
    """Studios built by tests cache their example results here, not in the checkout's .gradio/."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path_factory.mktemp("examples_cache")))
        yield


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    build_split("train", 8, root, size=128, workers=1, progress=False)
    build_split("test", 4, root, size=128, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_world, tmp_path_factory):
    """A checkpoint directory with every stage trained for two steps (real training code, tiny data;
    the caption grammar fitted on the tiny train split), and the verifier: a second detector, seed 1,
    copied in as the shipped one is."""
    root = tmp_path_factory.mktemp("ckpt")
    for stage in ("vqvae", "detector", "clip", "dgae", "graph_diffusion", "image_diffusion", "caption_grammar",
                  "text_diffusion"):
        train(TrainArgs(stage=stage, data=str(tiny_world), steps=2, batch=4, warmup=1, eval_limit=4,
                        run_dir=str(root / "runs"), out_dir=str(root), threads=1), command="fixture")
    second = root / "second_detector"
    train(TrainArgs(stage="detector", data=str(tiny_world), steps=2, batch=4, warmup=1, eval_limit=4, seed=1,
                    run_dir=str(root / "runs"), out_dir=str(second), threads=1), command="fixture")
    shutil.copy(second / "detector.pt", root / "verifier.pt")
    record_checkpoint("verifier.pt", read_manifest(second)["detector.pt"], root)
    return root


def fit_steps(stage, model, batch, steps: int, lr: float):
    """Run ``steps`` Adam steps of a stage module's ``loss`` on one batch: (losses, last logs)."""
    import torch
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss, logs = stage.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses, logs
