"""The project's CLIP: open_clip's CLIP model, a small architecture given as data, trained on the world.

The architecture is an open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``) in
``sd3core/models/configs/NAME.json``, registered with open_clip's factory (``add_model_config``) and
built with ``open_clip.create_model(NAME, pretrained=None)``; the weights are open_clip's own, so a
state dict saved here loads into that open_clip model unchanged. The default, ``clip_world_tiny``, is
a ViT over 128 px images (16 px patches: 8 x 8 = 64 tokens) and a causal text transformer over 48
tokens, both 3 layers of width 128, 128-d joint embedding (1.3 M parameters).

Images: (B, 3, S, S) float in [0, 1]; they are resized to the model's side (area when shrinking) and
normalised with the world's per-channel mean and std (``Config.image_mean``/``image_std``).

Text: open_clip's ``SimpleTokenizer`` (its BPE vocabulary ships inside the package: no download) cuts
a caption into BPE tokens; the model knows only the world's closed vocabulary (``Config.vocab``, the
BPE tokens of every word the world's caption writer uses: 86 today), so its embedding table is
``vocab_size`` (128) rows instead of CLIP's 49,408: ids are ``PAD_ID`` 0, ``SOT_ID`` 1, ``EOT_ID`` 2,
``UNK_ID`` 3 (any BPE token outside ``vocab``, e.g. "dog"), then ``FIRST_WORD_ID + i`` for
``vocab[i]``. The text feature is read at the end token (``text_cfg``: ``pool_type`` "eos",
``eos_id`` 2). A caption longer than the context keeps its first tokens and ends with ``EOT_ID``.

Training pairs one image with one of its scene's five captions, drawn afresh at each access, and
minimises open_clip's ``ClipLoss`` (symmetric InfoNCE with the learned logit scale, at most
``MAX_LOGIT_SCALE``); under DDP the features of all processes are gathered (with gradients), so
every image is contrasted with the captions of the whole global batch.
"""
from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import open_clip
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..images import to_model_images

CONFIG_DIR = Path(__file__).resolve().parent / "configs"   # the project's open_clip model configs
PAD_ID, SOT_ID, EOT_ID, UNK_ID = 0, 1, 2, 3                # special text ids (see the module docstring)
FIRST_WORD_ID = 4                                          # id of vocab[0]
MAX_LOGIT_SCALE = 100.0                                    # cap on exp(logit_scale), as open_clip trains
EVAL_BATCH = 250                                           # images or captions encoded at once


@lru_cache(maxsize=1)
def _bpe() -> open_clip.tokenizer.SimpleTokenizer:
    return open_clip.tokenizer.SimpleTokenizer()


def caption_writer_texts() -> list[str]:
    """Every wording the world's caption writer can use (``world.describe``), placeholders blanked:
    vocabulary words and synonyms, predicate wordings, sentence templates, articles, punctuation."""
    from .. import vocab
    from ..world import describe
    texts = [*vocab.PREDICATES, *vocab.SHAPES, *vocab.COLOURS, *vocab.SIZES, *vocab.MATERIALS,
             *[w for canon, others in vocab.SYNONYMS.items() for w in (canon, *others)],
             *[w for kinds in describe.PHRASES.values() for words in kinds.values() for w in words],
             *[t.text for t in describe.TEMPLATES], *describe.ALONE_TEMPLATES, *describe.CONNECTORS,
             "a an the it . ,"]
    return [re.sub(r"\{[^}]*\}", " ", text) for text in texts]


def world_vocabulary() -> tuple[str, ...]:
    """The BPE tokens (open_clip ``SimpleTokenizer`` strings, e.g. "cube</w>") of every word the
    world's caption writer can use (``caption_writer_texts``); sorted."""
    bpe = _bpe()
    ids = {i for text in caption_writer_texts() for i in bpe.encode(text)}
    return tuple(sorted(bpe.decoder[i] for i in ids))


@dataclass
class Config:
    model_config: str = "clip_world_tiny"   # open_clip architecture: sd3core/models/configs/NAME.json
    image_mean: tuple[float, float, float] = (0.706, 0.691, 0.667)   # per channel, world renders, 0-1
    image_std: tuple[float, float, float] = (0.137, 0.132, 0.141)    # per channel, world renders, 0-1
    vocab: tuple[str, ...] = field(default_factory=world_vocabulary)  # BPE tokens known; id 4 + index

    def __post_init__(self):  # a checkpoint's config comes back with lists
        self.image_mean, self.image_std = tuple(self.image_mean), tuple(self.image_std)
        self.vocab = tuple(self.vocab)


class WorldTokenizer:
    """Captions -> (B, context_length) int64 ids over a closed BPE vocabulary (module docstring).

    Nothing is memoised: encoding a batch of 128 captions costs milliseconds, and a cache of small
    tensors kept alive between a training step's large temporaries fragments glibc's heap, which
    then grows by tens of MB a step (measured: 25 MB per step of 128 new captions).
    """

    def __init__(self, vocab: tuple[str, ...], context_length: int):
        if context_length < 3:
            raise ValueError(f"context_length: got {context_length}, expected at least 3 "
                             "(start, a word, end)")
        bpe = _bpe()
        unknown = [t for t in vocab if t not in bpe.encoder]
        if unknown:
            raise ValueError(f"vocab: {unknown[:5]} are not tokens of open_clip's SimpleTokenizer")
        self.vocab, self.context_length = tuple(vocab), context_length
        self._map = torch.full((bpe.vocab_size,), UNK_ID, dtype=torch.int64)
        self._map[torch.tensor([bpe.encoder[t] for t in vocab], dtype=torch.int64)] = torch.arange(
            FIRST_WORD_ID, FIRST_WORD_ID + len(vocab))

    def _ids(self, text: str) -> torch.Tensor:
        """One caption -> (context_length,) int64: start, word ids, end, padding."""
        words = self._map[torch.tensor(_bpe().encode(text), dtype=torch.int64)][:self.context_length - 2]
        ids = torch.full((self.context_length,), PAD_ID, dtype=torch.int64)
        ids[0], ids[1:len(words) + 1], ids[len(words) + 1] = SOT_ID, words, EOT_ID
        return ids

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """B captions -> (B, context_length) int64 ids (a new tensor)."""
        if isinstance(texts, str):
            raise TypeError("texts: got one string, expected a list of captions")
        if not texts:
            return torch.zeros(0, self.context_length, dtype=torch.int64)
        return torch.stack([self._ids(t) for t in texts])


@contextlib.contextmanager
def _quiet_logging():
    """open_clip logs a warning for every model built without pretrained weights (ours are loaded
    after building, or trained), which would only be noise here."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def model_config(name: str) -> dict:
    """The open_clip model config (a dict: embed_dim, vision_cfg, text_cfg) called ``name``."""
    if name not in open_clip.list_models():   # first use: register the project's configs
        open_clip.add_model_config(CONFIG_DIR)
    config = open_clip.get_model_config(name)
    if config is None:
        ours = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise ValueError(f"model_config: got {name!r}, expected one of {ours} (sd3core/models/configs) "
                         "or an open_clip model name")
    return config


def build(config: Config) -> nn.Module:
    """open_clip's model for ``config.model_config``, randomly initialised, with ``.tokenizer`` (a
    ``WorldTokenizer``) and ``.config`` attached; ``model(images, ids)`` returns open_clip's output dict."""
    text_cfg = model_config(config.model_config)["text_cfg"]
    vocab_size, context = text_cfg.get("vocab_size", 49408), text_cfg.get("context_length", 77)
    if FIRST_WORD_ID + len(config.vocab) > vocab_size:
        raise ValueError(f"{config.model_config}: text_cfg.vocab_size is {vocab_size}, too small for "
                         f"{len(config.vocab)} words + {FIRST_WORD_ID} special ids; raise it in the JSON")
    if text_cfg.get("pool_type") != "eos" or text_cfg.get("eos_id") != EOT_ID:
        raise ValueError(f"{config.model_config}: text_cfg must read the feature at the end token: "
                         f"set \"pool_type\": \"eos\" and \"eos_id\": {EOT_ID}")
    with _quiet_logging():
        model = open_clip.create_model(config.model_config, pretrained=None, output_dict=True,
                                       force_preprocess_cfg={"mean": config.image_mean,
                                                             "std": config.image_std})
    model.tokenizer = WorldTokenizer(config.vocab, context)
    model.config = config
    return model


def _core(model: nn.Module) -> nn.Module:
    """The open_clip model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def input_size(model: nn.Module) -> int:
    """Pixels per side of the images the model's vision tower reads."""
    visual = _core(model).visual
    return visual.image_size[0] if isinstance(visual.image_size, (tuple, list)) else visual.image_size


def prepare_images(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) float in [0, 1], any S -> the model's input: its side, normalised."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: got shape {tuple(images.shape)}, expected (B, 3, S, S) in [0, 1]")
    visual = _core(model).visual
    side = input_size(model)
    if images.shape[-1] != side or images.shape[-2] != side:
        mode = "area" if images.shape[-1] > side else "bilinear"
        images = F.interpolate(images, size=(side, side), mode=mode)
    mean = torch.tensor(visual.preprocess_cfg["mean"], device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(visual.preprocess_cfg["std"], device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def encode_images(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) float in [0, 1] -> (B, D) unit-length image embeddings."""
    core = _core(model)
    device = next(core.parameters()).device
    return core.encode_image(prepare_images(core, images.to(device)), normalize=True)


def encode_texts(model: nn.Module, texts: list[str]) -> torch.Tensor:
    """B captions -> (B, D) unit-length text embeddings."""
    core = _core(model)
    device = next(core.parameters()).device
    return core.encode_text(core.tokenizer(texts).to(device), normalize=True)


def clip_score(model: nn.Module, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """(B, 3, S, S) float in [0, 1] and B captions -> (B,) CLIP score: 100 * max(cos, 0) of each
    image with its caption (Hessel et al. 2021, with torchmetrics' weight 100 instead of 2.5)."""
    if len(texts) != len(images):
        raise ValueError(f"texts: got {len(texts)} captions for {len(images)} images, expected one each")
    return 100 * (encode_images(model, images) * encode_texts(model, texts)).sum(-1).clamp_min(0)


class CaptionPairs(Dataset):
    """Scenes as {"image": (3, S, S) uint8, "text": str} samples: each access draws one of the scene's
    captions with torch's global generator (seeded by the training loop), or the first if
    ``random_caption`` is False."""

    def __init__(self, images: torch.Tensor, captions: list[list[str]], random_caption: bool = True):
        if len(images) != len(captions):
            raise ValueError(f"captions: got {len(captions)} lists for {len(images)} images")
        self.images, self.captions, self.random_caption = images, captions, random_caption

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        caps = self.captions[i]
        j = int(torch.randint(len(caps), ())) if self.random_caption else 0
        return {"image": self.images[i], "text": caps[j]}


def _image_size(name: str) -> int:
    size = model_config(name)["vision_cfg"]["image_size"]
    return size[0] if isinstance(size, (tuple, list)) else size


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None,
              random_caption: bool = True) -> CaptionPairs:
    """World scenes of ``split`` (the first ``limit``; 0: all) with their captions; images are
    area-resampled to the side of ``config``'s model (default: ``Config()``) and kept as uint8 (a
    quarter of the memory of floats); ``loss`` resizes again if a model wants another side."""
    from ..world.build import load_split
    arrays, records = load_split(data_dir, split, ("rgb",))
    rgb = arrays["rgb"][:limit] if limit else arrays["rgb"]
    records = records[:len(rgb)]
    size = _image_size((config or Config()).model_config)
    images = torch.cat([(to_model_images(rgb[i:i + 1000], size) * 255).round().to(torch.uint8)
                        for i in range(0, len(rgb), 1000)])
    return CaptionPairs(images, [[c["text"] for c in r["captions"]] for r in records], random_caption)


def _clip_loss() -> open_clip.ClipLoss:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return open_clip.ClipLoss(local_loss=True, gather_with_grad=True, rank=dist.get_rank(),
                                  world_size=dist.get_world_size())
    return open_clip.ClipLoss()


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """open_clip's ClipLoss on a batch of {"image": (B, 3, S, S) uint8, "text": B captions}; logs
    the logit scale and the share of this process's images whose own caption scores highest."""
    core = _core(model)
    images = prepare_images(core, batch["image"].float() / 255)
    ids = core.tokenizer(batch["text"]).to(images.device)
    out = model(images, ids)
    scale = out["logit_scale"].clamp(max=MAX_LOGIT_SCALE)
    total = _clip_loss()(out["image_features"], out["text_features"], scale)
    with torch.no_grad():
        logits = out["image_features"] @ out["text_features"].T
        accuracy = (logits.argmax(1) == torch.arange(len(logits), device=logits.device)).float().mean()
    return total, {"logit_scale": float(scale.detach()), "batch_i2t_acc": float(accuracy)}


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict:
    """Recall@k both ways for (N, D) image and (N, D) text embeddings, row i of each a true pair.

    ``i2t_recall_at_k``: the share of images whose own caption is among the k captions scoring
    highest; ``t2i_recall_at_k`` the same for captions. Ties count in the true pair's favour.
    """
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"embeddings: got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}, expected "
                         "the same (N, D)")
    sims = image_emb.float() @ text_emb.float().T
    true = sims.diagonal()
    rank_i2t = (sims > true[:, None]).sum(1)       # captions that beat an image's own caption
    rank_t2i = (sims > true[None, :]).sum(0)       # images that beat a caption's own image
    out = {}
    for k in ks:
        out[f"i2t_recall_at_{k}"] = round(float((rank_i2t < k).float().mean()), 4)
    for k in ks:
        out[f"t2i_recall_at_{k}"] = round(float((rank_t2i < k).float().mean()), 4)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, data_dir: str, split: str, limit: int) -> dict:
    """Retrieval over the first caption of each of the first ``limit`` scenes (N pairs: image i with
    caption 0 of scene i) and the mean CLIP score of the true pairs and of shuffled pairs (image i
    with the caption of scene i + 1, mod N)."""
    data = load_data(data_dir, split, limit, model.config, random_caption=False)
    image_emb, text_emb = [], []
    for start in range(0, len(data), EVAL_BATCH):
        stop = min(len(data), start + EVAL_BATCH)
        image_emb.append(encode_images(model, data.images[start:stop].float() / 255).cpu())
        text_emb.append(encode_texts(model, [data.captions[i][0] for i in range(start, stop)]).cpu())
    image_emb, text_emb = torch.cat(image_emb), torch.cat(text_emb)
    metrics = retrieval_metrics(image_emb, text_emb)
    true = 100 * (image_emb * text_emb).sum(1).clamp_min(0)
    shuffled = 100 * (image_emb * text_emb.roll(-1, 0)).sum(1).clamp_min(0)
    return {**metrics, "clip_score_true": round(float(true.mean()), 3),
            "clip_score_shuffled": round(float(shuffled.mean()), 3)}
