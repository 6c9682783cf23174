"""The image tokenizer: object pixels (from the instance masks) weigh more than background in its loss,
its config deepens each stage without changing the token grid, and its perceptual loss reads images
through the shipped detector."""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import fit_steps
from sd3core.models import vqvae
from sd3core.world.build import load_split


class FixedReconstruction(nn.Module):
    """Stands in for the auto-encoder: returns a given reconstruction whatever it reads."""

    def __init__(self, recon: torch.Tensor):
        super().__init__()
        self.recon = recon
        self.config = vqvae.Config()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.recon


def test_object_cover_grows_objects_by_a_pixel_and_averages_when_shrinking():
    mask = np.full((1, 8, 8), -1, dtype=np.int8)
    mask[0, 3, 3] = 0
    cover = vqvae.object_cover(mask, 8)
    assert cover.shape == (1, 1, 8, 8) and cover.sum() == 9 and cover[0, 0, 2:5, 2:5].eq(1).all()
    assert torch.allclose(vqvae.object_cover(mask, 4).sum() * 4, torch.tensor(9.0))
    assert vqvae.object_cover(np.full((2, 8, 8), -1, dtype=np.int8), 4).eq(0).all()


def test_an_error_on_an_object_costs_more_than_the_same_error_on_the_background():
    image = torch.full((1, 3, 4, 4), 0.5)
    objects = torch.zeros(1, 1, 4, 4)
    objects[..., 0, 0] = 1
    on_object, on_background = image.clone(), image.clone()
    on_object[..., 0, 0] += 0.2
    on_background[..., 3, 3] += 0.2
    batch = {"image": image, "objects": objects}
    cost_object, logs_object = vqvae.loss(FixedReconstruction(on_object), batch)
    cost_background, logs_background = vqvae.loss(FixedReconstruction(on_background), batch)
    assert cost_object > 2 * cost_background
    assert logs_object["psnr"] == logs_background["psnr"]  # PSNR stays the plain, unweighted one


def test_world_samples_carry_their_object_cover_and_the_loss_falls(tiny_world):
    data = vqvae.load_data(str(tiny_world), "train", limit=4)
    arrays, _ = load_split(tiny_world, "train", ("mask",))
    assert len(data) == 4 and data[0]["image"].shape == (3, 64, 64) and data[0]["objects"].shape == (1, 64, 64)
    assert 0 < float(data[0]["objects"].mean()) < 1
    assert torch.allclose(data[1]["objects"], vqvae.object_cover(arrays["mask"][1:2], 64)[0])
    torch.manual_seed(0)
    model = vqvae.build(vqvae.Config(channels=(8, 16, 16)))
    batch = {k: torch.stack([d[k] for d in data]) for k in data[0]}
    losses, _ = fit_steps(vqvae, model, batch, steps=30, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0]


def test_blocks_deepen_each_stage_without_changing_the_token_grid():
    shallow = vqvae.build(vqvae.Config(channels=(8, 16, 16)))
    deep = vqvae.build(vqvae.Config(channels=(8, 16, 16), blocks=(1, 2, 3)))
    assert sum(p.numel() for p in deep.parameters()) > sum(p.numel() for p in shallow.parameters())
    images = torch.rand(2, 3, 64, 64)
    assert deep.tokenize(images).shape == shallow.tokenize(images).shape == (2, 8, 8)
    assert deep(images).shape == images.shape
    with pytest.raises(ValueError, match="one count per stage"):
        vqvae.build(vqvae.Config(channels=(8, 16, 16), blocks=(1, 2)))


def test_a_decoder_of_another_size_keeps_the_grid_and_must_match_the_stages():
    wide = vqvae.build(vqvae.Config(channels=(8, 16, 16), decoder_channels=(16, 32, 32), decoder_blocks=(2, 2, 2)))
    images = torch.rand(2, 3, 64, 64)
    assert wide.tokenize(images).shape == (2, 8, 8) and wide(images).shape == images.shape
    with pytest.raises(ValueError, match="one value per stage"):
        vqvae.build(vqvae.Config(channels=(8, 16, 16), decoder_channels=(16, 32)))


def test_the_reader_loss_is_smaller_for_a_closer_reconstruction_and_trains_only_the_decoder(tiny_world):
    data = vqvae.load_data(str(tiny_world), "train", limit=2, config=vqvae.Config(reader_weight=1.0))
    render = torch.stack([d["render"] for d in data])
    assert render.dtype == torch.uint8 and render.shape == (2, 3, 128, 128)
    close, objects = torch.stack([d["image"] for d in data]), torch.stack([d["objects"] for d in data])
    far = torch.full_like(close, 0.5)
    assert vqvae.reader_loss(close, render, objects) < 0.5 * vqvae.reader_loss(far, render, objects)
    # only where objects are: with none, any reconstruction costs nothing
    assert vqvae.reader_loss(far, render, torch.zeros_like(objects)) == 0
    model = vqvae.build(vqvae.Config(channels=(8, 16, 16), frozen_encoder=True, reader_weight=1.0))
    batch = {k: torch.stack([d[k] for d in data]) for k in data[0]}
    total, logs = vqvae.loss(model, batch)
    total.backward()
    assert logs["reader"] > 0 and all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert not any(p.requires_grad for p in vqvae.shipped_reader().parameters())
