"""Training: a real stage runs a few steps in one process and under torchrun (DDP, gloo), resumes,
and ships a checkpoint that loads only when its manifest checksum matches."""
import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from sd3core.checkpoints import load_checkpoint, read_manifest
from sd3core.models import vqvae
from sd3core.train import TrainArgs, stage_module, train


def _args(tiny_world, tmp_path, steps):
    return TrainArgs(stage="vqvae", data=str(tiny_world), steps=steps, batch=4, warmup=1,
                     eval_limit=4, run_dir=str(tmp_path / "runs"), out_dir=str(tmp_path / "ckpt"),
                     log_every=1, save_every=1, threads=1)


def test_single_process_training_ships_a_verified_checkpoint(tiny_world, tmp_path):
    metrics = train(_args(tiny_world, tmp_path, steps=2), command="test command")
    assert set(metrics) == {"psnr_db", "codes_used_fraction"} and metrics["psnr_db"] > 0
    entry = read_manifest(tmp_path / "ckpt")["vqvae.pt"]
    assert entry["command"] == "test command" and entry["steps"] == 2 and entry["metrics"] == metrics
    assert "init" not in entry  # started from scratch
    state = load_checkpoint("vqvae.pt", tmp_path / "ckpt")
    assert {v.dtype for v in state["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    model = vqvae.build(vqvae.Config(**state["config"]))
    model.load_state_dict(state["state_dict"])
    # the float16 weights come back as float32, and the manifest's metrics are those of what shipped
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert vqvae.evaluate(model.eval(), str(tiny_world), "test", 4) == metrics
    # resuming continues from the saved step instead of starting over
    train(_args(tiny_world, tmp_path, steps=3), command="test command")
    log = (tmp_path / "runs" / "vqvae" / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log if line.startswith("step")] == ["1", "2", "3"]


def test_bfloat16_training_lowers_the_loss_and_is_recorded(tiny_world, tmp_path):
    args = replace(_args(tiny_world, tmp_path, steps=6), precision="bfloat16", lr=3e-3)
    train(args, command="test command")
    log = (tmp_path / "runs" / "vqvae" / "train.log").read_text().splitlines()
    losses = [float(line.split("loss=")[1].split()[0]) for line in log if line.startswith("step")]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert read_manifest(tmp_path / "ckpt")["vqvae.pt"]["precision"] == "bfloat16"
    with pytest.raises(ValueError, match="--precision: got 'half'"):
        train(replace(args, precision="half"))


def test_a_run_from_a_shipped_checkpoint_records_what_it_started_from(tiny_world, tmp_path):
    args = replace(_args(tiny_world, tmp_path, steps=1), init="vqvae.pt")
    train(args, command="test command")
    shipped = read_manifest()["vqvae.pt"]
    entry = read_manifest(tmp_path / "ckpt")["vqvae.pt"]
    assert entry["init"] == {"file": "vqvae.pt", "sha256": shipped["sha256"], "command": shipped["command"]}
    # the shipped model's size, not the default Config
    assert {k: entry["config"][k] for k in shipped["config"]} == shipped["config"]


def test_a_decoder_only_run_keeps_the_codes_grows_the_decoder_and_records_what_it_read(tiny_world, tmp_path):
    config = {"frozen_encoder": True, "decoder_channels": [16, 32, 32], "reader_weight": 1.0}
    args = replace(_args(tiny_world, tmp_path, steps=2), init="vqvae.pt", config=json.dumps(config), lr=1e-2)
    train(args, command="test command")
    entry = read_manifest(tmp_path / "ckpt")["vqvae.pt"]
    assert entry["reads"] == {"detector.pt": read_manifest()["detector.pt"]["sha256"]}
    models = []
    for directory in (tmp_path / "ckpt", None):
        state = load_checkpoint("vqvae.pt", directory) if directory else load_checkpoint("vqvae.pt")
        models.append(vqvae.build(vqvae.Config(**state["config"])))
        models[-1].load_state_dict(state["state_dict"])
    retrained, shipped = models
    images = torch.stack([d["image"] for d in vqvae.load_data(str(tiny_world), "test")])
    assert torch.equal(retrained.tokenize(images), shipped.tokenize(images))
    assert retrained.decoder[0].out_channels == 32 != shipped.decoder[0].out_channels
    assert retrained.detokenize(retrained.tokenize(images)).shape == images.shape


def test_init_from_another_stages_checkpoint_is_refused(tiny_world, tmp_path):
    with pytest.raises(ValueError, match=r"--init clip.pt or --config: .*model_config.* not among the vqvae model's"):
        train(replace(_args(tiny_world, tmp_path, steps=1), init="clip.pt"))
    with pytest.raises(ValueError, match="--config: widths not among"):
        train(replace(_args(tiny_world, tmp_path, steps=1), config='{"widths": [8]}'))


def test_corrupt_or_missing_checkpoint_names_file_and_command(tiny_world, tmp_path):
    train(_args(tiny_world, tmp_path, steps=1), command="python -m sd3core train vqvae --steps 1")
    path = tmp_path / "ckpt" / "vqvae.pt"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match=r"vqvae.pt: sha256 differs.*train vqvae --steps 1"):
        load_checkpoint("vqvae.pt", tmp_path / "ckpt")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"vqvae.pt: checkpoint missing.*train vqvae"):
        load_checkpoint("vqvae.pt", tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="not listed"):
        load_checkpoint("other.pt", tmp_path / "ckpt")


def test_ddp_training_under_torchrun(tiny_world, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "sd3core", "train", "vqvae", "--data", str(tiny_world), "--steps", "2", "--batch", "4",
           "--warmup", "1", "--eval-limit", "4", "--run-dir", str(tmp_path / "runs"),
           "--out-dir", str(tmp_path / "ckpt"), "--log-every", "1", "--threads", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    entry = json.loads((tmp_path / "ckpt" / "manifest.json").read_text())["checkpoints"]["vqvae.pt"]
    assert entry["processes"] == 2 and entry["steps"] == 2
    assert entry["command"].startswith("torchrun --nproc_per_node 2 -m sd3core train vqvae --data")


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(ValueError, match="stage: got 'painter'"):
        stage_module("painter")


def test_vqvae_tokens_round_trip_shapes():
    model = vqvae.build(vqvae.Config())
    images = torch.rand(2, 3, 64, 64)
    tokens = model.tokenize(images)
    assert tokens.shape == (2, 8, 8) and tokens.dtype == torch.int64
    assert 0 <= int(tokens.min()) and int(tokens.max()) < model.fsq.codebook_size
    q = model.fsq.quantise(model.encoder(images * 2 - 1))
    assert torch.equal(model.fsq.to_index(model.fsq.from_index(tokens)), tokens)
    assert torch.allclose(model.fsq.from_index(model.fsq.to_index(q)), q, atol=1e-6)
    assert model.detokenize(tokens).shape == (2, 3, 64, 64)
