"""The project's CLIP: its config builds through open_clip's factory, the tokenizer needs no network,
embeddings are unit length, the loss can overfit a few pairs, the retrieval metrics are right on
hand-made embeddings, ``python -m sd3core train clip`` runs end to end, and under DDP the loss sees
the global batch."""
import json
import socket

import open_clip
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from conftest import fit_steps
from sd3core.__main__ import main
from sd3core.checkpoints import load_checkpoint
from sd3core.models import clip
from sd3core.world.build import load_split


@pytest.fixture
def one_thread():
    """Two threads on a busy 2-core machine make small steps many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return clip.build(clip.Config()).eval()


def test_config_is_data_built_by_open_clips_factory(model):
    config = clip.model_config("clip_world_tiny")
    assert "clip_world_tiny" in open_clip.list_models()
    assert set(config) == {"embed_dim", "vision_cfg", "text_cfg"}
    assert isinstance(model, open_clip.CLIP)
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    # the weights are open_clip's own: they load into a model open_clip builds from the name alone
    plain = open_clip.create_model("clip_world_tiny", pretrained=None)
    plain.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="model_config: got 'clip_nope'"):
        clip.build(clip.Config(model_config="clip_nope"))


def test_tokenizer_works_offline_on_the_world_vocabulary(monkeypatch, tiny_world):
    def no_network(*args, **kwargs):
        raise OSError("network access in a test")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    clip._bpe.cache_clear()
    tokenizer = clip.WorldTokenizer(clip.world_vocabulary(), context_length=8)
    ids = tokenizer(["A red cube.", "a purple dog", "the cube is on the ball and left of the cone"])
    assert ids.shape == (3, 8) and ids.dtype == torch.int64
    assert ids[0, 0] == clip.SOT_ID and ids[0, 5] == clip.EOT_ID and (ids[0, 6:] == clip.PAD_ID).all()
    assert ids[1, 3] == clip.UNK_ID                       # "dog" is no word of the world
    assert ids[2, -1] == clip.EOT_ID                      # too long: cut, still ends with the end token
    assert len(clip.world_vocabulary()) + clip.FIRST_WORD_ID <= 128
    _, records = load_split(tiny_world, "train")
    captions = [c["text"] for r in records for c in r["captions"]]
    assert not (clip.WorldTokenizer(clip.world_vocabulary(), 77)(captions) == clip.UNK_ID).any()


def test_embeddings_are_unit_length_and_scores_bounded(model):
    images = torch.rand(3, 3, 128, 128)
    texts = ["A red cube.", "There is a big blue ball.", "A cone is to the left of a pail."]
    with torch.no_grad():
        image_emb, text_emb = clip.encode_images(model, images), clip.encode_texts(model, texts)
        scores = clip.clip_score(model, images, texts)
    assert image_emb.shape == text_emb.shape == (3, 128)
    assert torch.allclose(image_emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(text_emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert scores.shape == (3,) and (scores >= 0).all() and (scores <= 100).all()
    assert torch.allclose(scores, 100 * (image_emb * text_emb).sum(-1).clamp_min(0), atol=1e-4)
    with pytest.raises(ValueError, match="3 captions for 2 images"):
        clip.clip_score(model, images[:2], texts)


def test_loss_overfits_eight_pairs(tiny_world, one_thread):
    torch.manual_seed(0)
    model = clip.build(clip.Config())
    data = clip.load_data(str(tiny_world), "train", random_caption=False)
    batch = {"image": data.images, "text": [caps[0] for caps in data.captions]}
    losses, logs = fit_steps(clip, model, batch, steps=30, lr=1e-3)
    assert losses[-1] < 0.3 * losses[0] and logs["batch_i2t_acc"] == 1.0


def test_retrieval_metrics_on_hand_made_embeddings():
    eye = torch.eye(4)
    assert clip.retrieval_metrics(eye, eye) == {"i2t_recall_at_1": 1.0, "i2t_recall_at_5": 1.0,
                                                "t2i_recall_at_1": 1.0, "t2i_recall_at_5": 1.0}
    swapped = eye[[1, 0, 2, 3]]                           # captions 0 and 1 describe each other's image
    metrics = clip.retrieval_metrics(eye, swapped, ks=(1, 2))
    assert metrics["i2t_recall_at_1"] == 0.5 and metrics["t2i_recall_at_1"] == 0.5
    assert metrics["i2t_recall_at_2"] == 1.0              # second to the swapped caption, tied with the rest


def _train_argv(tiny_world, tmp_path):
    return ["train", "clip", "--data", str(tiny_world), "--steps", "2", "--batch", "4", "--warmup", "1",
            "--eval-limit", "4", "--run-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "ckpt"),
            "--log-every", "1", "--threads", "1"]


def test_cli_trains_and_ships_a_checkpoint_that_reloads(tiny_world, tmp_path, capsys):
    assert main(_train_argv(tiny_world, tmp_path)) == 0
    assert "clip_score_true=" in capsys.readouterr().out
    entry = json.loads((tmp_path / "ckpt" / "manifest.json").read_text())["checkpoints"]["clip.pt"]
    assert entry["steps"] == 2 and entry["data"]["eval_n"] == 4
    assert {"i2t_recall_at_1", "i2t_recall_at_5", "t2i_recall_at_1", "clip_score_true",
            "clip_score_shuffled"} <= set(entry["metrics"])
    state = load_checkpoint("clip.pt", tmp_path / "ckpt")
    model = clip.build(clip.Config(**state["config"]))
    model.load_state_dict(state["state_dict"])
    metrics = clip.evaluate(model.eval(), str(tiny_world), "test", 4)
    assert metrics == entry["metrics"]


def _ddp_rank(rank, world, init_file, state, batch, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = clip.build(clip.Config())
    model.load_state_dict(state)
    share = len(batch["text"]) // world
    mine = slice(rank * share, (rank + 1) * share)
    ddp = DistributedDataParallel(model)      # kept alive: its reducer averages gradients in backward
    loss, _ = clip.loss(ddp, {"image": batch["image"][mine], "text": batch["text"][mine]})
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": {n: p.grad for n, p in model.named_parameters()}},
               out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_ddp_loss_contrasts_the_global_batch(tiny_world, tmp_path, one_thread):
    """Two DDP processes with half the batch each give the one-process loss and gradients of the
    whole batch: features are gathered with their gradients (open_clip's local_loss mode)."""
    torch.manual_seed(0)
    model = clip.build(clip.Config())
    data = clip.load_data(str(tiny_world), "train", random_caption=False)
    batch = {"image": data.images, "text": [caps[0] for caps in data.captions]}
    mp.start_processes(_ddp_rank, args=(2, tmp_path / "init", model.state_dict(), batch, tmp_path), nprocs=2,
                       start_method="fork")   # fork: the children start without importing anything again
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    loss, _ = clip.loss(model, batch)
    loss.backward()
    assert torch.allclose((ranks[0]["loss"] + ranks[1]["loss"]) / 2, loss.detach(), atol=1e-5)
    for name, p in model.named_parameters():
        for r in ranks:
            assert torch.allclose(r["grad"][name], p.grad, rtol=1e-3, atol=1e-6), name
