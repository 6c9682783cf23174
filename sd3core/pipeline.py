"""The Engine: loads each shipped model once (lazily), picks the device, and runs the arrows of the
SD3 data flow that exist so far — ``parse`` (text → TSG), ``tokenize`` / ``detokenize`` (image ⇄
VQ tokens), ``detect`` (image → VSG with depth), ``lift_to_3d`` (TSG or VSG → 3DSG),
``clip_score`` (image–caption agreement).

Images cross the API as (H, W, 3) uint8 sRGB numpy arrays; the Engine owns resizing and tensors.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .checkpoints import CHECKPOINT_DIR, load_checkpoint
from .graph import SceneGraph
from .images import to_model_images, to_uint8_images

MAX_IMAGE_PIXELS = 4096 * 4096  # larger images are refused before any work
MAX_SAMPLES = 16                 # most samples one call may ask for
CONDITION_CACHE_SIZE = 16        # condition encodings kept for regenerating from the same inputs
CAPTION_CANDIDATES = (8, 8)      # captions drawn per caption asked for in each round (see generate_captions)
IMAGE_CANDIDATES = 8             # images drawn per image asked for (see generate_image_tokens)
MAX_REPAIRS = 4                  # most repair rounds one call may ask for
IMAGE_REPAIRS = 2                # rounds redrawing what the verifier misses (generate_image_tokens)
REPAIR_COVER = 0.05              # cells showing more of an object to redraw than this are drawn again
# checkpoints built by another stage's model: the verifier is a second detector (another seed) that
# only chooses among drawn images, so the detector that measures them never grades its own picks
BUILT_AS = {"verifier": "detector"}


def pick_device() -> torch.device:
    """``SD3_DEVICE`` if set, else cuda, then mps, then cpu."""
    if os.environ.get("SD3_DEVICE"):
        return torch.device(os.environ["SD3_DEVICE"])
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_precision(device: torch.device) -> torch.dtype:
    """The dtype the Engine's models compute in (their weights stay float32; autocast runs the
    matrix products and convolutions in it): ``SD3_PRECISION`` ("float32" or "bfloat16") if set,
    else bfloat16 on CUDA and on CPUs with native bfloat16 arithmetic (AVX512-BF16), float32 elsewhere."""
    raw = os.environ.get("SD3_PRECISION")
    if raw:
        if raw not in ("float32", "bfloat16"):
            raise ValueError(f"SD3_PRECISION: got {raw!r}, expected 'float32' or 'bfloat16'")
        return getattr(torch, raw)
    # torch asks the CPU through a private function; without it, assume no native bfloat16
    cpu_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    native = device.type == "cuda" or (device.type == "cpu" and cpu_bf16())
    return torch.bfloat16 if native else torch.float32


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as (H, W, 3) uint8, or raise ValueError saying what was expected."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image: got {type(image).__name__}, expected an (H, W, 3) uint8 numpy array")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image: got shape {image.shape}, expected (H, W, 3)")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ValueError(f"image: {image.shape[1]}x{image.shape[0]} pixels is over the limit of "
                         f"{MAX_IMAGE_PIXELS:,} pixels")
    if image.dtype != np.uint8:
        raise ValueError(f"image: got dtype {image.dtype}, expected uint8 (0-255)")
    return image[:, :, :3]


def set_threads() -> int:
    """Set torch's CPU threads to ``SD3_THREADS`` if given (a whole number >= 1), else leave
    torch's default (one per core it sees; 2 on the 2-core dev machine, where that is fastest:
    ``bench/arrows.py``). Returns the number in use."""
    raw = os.environ.get("SD3_THREADS")
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"SD3_THREADS: got {raw!r}, expected a whole number of at least 1")
        torch.set_num_threads(int(raw))
    return torch.get_num_threads()


def caption_agreement(tsg: SceneGraph, graph3d: SceneGraph) -> int:
    """How well a caption (its parsed TSG) agrees with the 3DSG it was drawn from: the spatial
    relations it states that hold there (``evaluate.relation_correctness``) minus those that do not."""
    from .evaluate import relation_correctness
    held = relation_correctness(tsg, graph3d)
    return 2 * sum(held) - len(held)


def agreement(check: tuple[list[bool], list[bool]]) -> int:
    """The agreement of an image with its 3DSG from ``evaluate.faithfulness``'s (found, holds):
    the 3DSG's objects found with their stated words plus its relations that hold there."""
    found, holds = check
    return sum(found) + sum(holds)


def image_agreement(graph3d: SceneGraph, detections) -> int:
    """How well an image (``detector.Detections`` of it) agrees with the 3DSG it was drawn from
    (``agreement``)."""
    from .evaluate import faithfulness
    return agreement(faithfulness(graph3d, detections))


def _to_redraw(graph3d: SceneGraph, check: tuple[list[bool], list[bool]]) -> list[bool]:
    """Per object of ``graph3d``, whether a repair round draws its cells again, from the verifier's
    (found, holds): an object not found, and the subject of a relation that does not hold although
    both its ends are found (drawn again where the 3DSG puts it, it may come out in its place)."""
    found, holds = check
    redo = [not f for f in found]
    index = {o.id: i for i, o in enumerate(graph3d.objects)}
    for r, held in zip(graph3d.spatial_relations(), holds):
        if not held and found[index[r.subject]] and found[index[r.object]]:
            redo[index[r.subject]] = True
    return redo


def _cells_to_redraw(cells: torch.Tensor, redraw: list[list[bool]]) -> torch.Tensor:
    """(B, grid**2) bool: the cells showing more than ``REPAIR_COVER`` of an object to redraw.
    ``cells``: (B, grid**2, P) ``ImageDiffusion.object_cells``; ``redraw``: per 3DSG, per object."""
    chosen = torch.zeros(cells.shape[0], cells.shape[2], dtype=torch.bool)
    for b, flags in enumerate(redraw):
        chosen[b, :len(flags)] = torch.tensor(flags, dtype=torch.bool)
    return ((cells > REPAIR_COVER) & chosen[:, None, :]).any(-1)


def _image_key(image: np.ndarray) -> tuple:
    return image.shape, hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


class Engine:
    """One per process. Models load on first use from ``checkpoint_dir`` (sha256-verified) and
    compute in ``precision`` (default: ``pick_precision``).

    The encodings the diffusions are conditioned on (3DSG features, caption embeddings, an image's
    VQ tokens) are kept for the last ``CONDITION_CACHE_SIZE`` inputs, so regenerating from the same
    graphs (new seed, more samples) runs only the diffusion."""

    def __init__(self, checkpoint_dir: str | Path = CHECKPOINT_DIR, device: str | torch.device | None = None,
                 precision: torch.dtype | None = None):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.device = torch.device(device) if device is not None else pick_device()
        self.precision = precision if precision is not None else pick_precision(self.device)
        if self.precision not in (torch.float32, torch.bfloat16):
            raise ValueError(f"precision: got {self.precision}, expected torch.float32 or torch.bfloat16")
        set_threads()
        self._models: dict[str, torch.nn.Module] = {}
        self._conditions: OrderedDict = OrderedDict()
        self._conditions_lock = threading.Lock()

    def model(self, stage: str) -> torch.nn.Module:
        """The trained model of ``stage`` ("vqvae", …, or "verifier": ``BUILT_AS``), loaded once from
        ``{stage}.pt``, in eval mode on the device."""
        if stage not in self._models:
            from .train import stage_module
            module = stage_module(BUILT_AS.get(stage, stage))
            state = load_checkpoint(f"{stage}.pt", self.checkpoint_dir)
            model = module.build(module.Config(**state["config"]))
            model.load_state_dict(state["state_dict"])
            self._models[stage] = model.to(self.device).eval()
        return self._models[stage]

    def set_model(self, stage: str, model: torch.nn.Module) -> None:
        """Use ``model`` for ``stage`` instead of the shipped checkpoint (evaluation during training)."""
        self._models[stage] = model.to(self.device).eval()
        with self._conditions_lock:
            self._conditions.clear()

    def _cached(self, key: tuple, encode):
        """``encode()``, or what it gave for ``key`` among the last ``CONDITION_CACHE_SIZE`` keys."""
        with self._conditions_lock:
            if key in self._conditions:
                self._conditions.move_to_end(key)
                return self._conditions[key]
        value = encode()
        with self._conditions_lock:
            self._conditions[key] = value
            while len(self._conditions) > CONDITION_CACHE_SIZE:
                self._conditions.popitem(last=False)
        return value

    def _autocast(self):
        if self.precision == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision)

    def _batch(self, images: list[np.ndarray], size: int) -> torch.Tensor:
        """Checked (H, W, 3) uint8 images → (B, 3, size, size) float batch on the device."""
        if not images:
            raise ValueError("images: got an empty list, expected at least one image")
        return torch.cat([to_model_images(check_image(im)[None], size) for im in images]).to(self.device)

    def parse(self, text: str) -> SceneGraph:
        """Sentence → TSG (rules over spaCy; no checkpoint)."""
        from .textparse import parse_text
        return parse_text(text)

    def tokenize(self, images: list[np.ndarray]) -> torch.Tensor:
        """(H, W, 3) uint8 images → (B, h, w) int64 VQ tokens (images resized to the tokenizer's size)."""
        vq = self.model("vqvae")
        with torch.inference_mode(), self._autocast():
            return vq.tokenize(self._batch(images, vq.config.image_size)).cpu()

    def detokenize(self, tokens: torch.Tensor) -> list[np.ndarray]:
        """(B, h, w) int64 VQ tokens → list of (S, S, 3) uint8 images."""
        vq = self.model("vqvae")
        if tokens.ndim != 3 or tokens.shape[1:] != (vq.grid, vq.grid):
            raise ValueError(f"tokens: got shape {tuple(tokens.shape)}, expected (B, {vq.grid}, {vq.grid})")
        if int(tokens.min()) < 0 or int(tokens.max()) >= vq.fsq.codebook_size:
            raise ValueError(f"tokens: values must lie in 0..{vq.fsq.codebook_size - 1}")
        with torch.inference_mode(), self._autocast():
            return to_uint8_images(vq.detokenize(tokens.to(self.device)))

    def detect(self, images: list[np.ndarray], threshold: float | None = None, reader: str = "detector") -> list:
        """(H, W, 3) uint8 images → ``detector.Detections`` (VSG, depth in metres, scores) each.

        ``threshold`` is the lowest heatmap score kept (default: the detector's operating point).
        ``reader`` is "detector" (the studio's image reader and the evaluation's yardstick) or
        "verifier" (the second detector that ``generate_image_tokens`` chooses with).
        """
        from .models.detector import DETECT_THRESHOLD, detect
        if reader not in ("detector", "verifier"):
            raise ValueError(f"reader: got {reader!r}, expected 'detector' or 'verifier'")
        model = self.model(reader)
        with torch.inference_mode(), self._autocast():
            return detect(model, self._batch(images, model.config.image_size),
                          DETECT_THRESHOLD if threshold is None else threshold)

    def clip_score(self, images: list[np.ndarray], texts: list[str]) -> list[float]:
        """CLIP score (100 × max(cos, 0)) of each image with its caption, by the project's CLIP."""
        from .models.clip import clip_score, input_size
        model = self.model("clip")
        if len(images) != len(texts):
            raise ValueError(f"texts: got {len(texts)} captions for {len(images)} images, expected one each")
        with torch.inference_mode(), self._autocast():
            return clip_score(model, self._batch(images, input_size(model)), texts).float().cpu().tolist()

    def lift_to_3d(self, graph: SceneGraph, steps: int | None = None, seed: int = 0,
                   temperature: float | None = None) -> SceneGraph:
        """TSG or VSG → one 3DSG sampled by the graph diffusion (``lift_to_3d_samples`` with n = 1)."""
        return self.lift_to_3d_samples(graph, 1, steps, seed, temperature)[0]

    def lift_to_3d_samples(self, graph: SceneGraph, n: int, steps: int | None = None, seed: int = 0,
                           temperature: float | None = None) -> list[SceneGraph]:
        """TSG or VSG → ``n`` 3DSGs, drawn in one batch from ``seed`` (same seed, same graphs).

        Each keeps the input's objects and adds position and size (camera frame, metres) and every
        nine-predicate relation; relations a TSG states hold in each. ``steps`` and ``temperature``
        (0-2; 0: most likely positions, more: more varied scenes) default to the studio's,
        ``graph_diffusion.DEFAULT_STEPS`` and ``POSITION_TEMPERATURE``. An empty graph gives empty
        3DSGs. Raises ValueError for an unknown label, contradictory stated relations, more objects
        than the lifter takes, or ``n`` / ``steps`` / ``temperature`` out of range.
        """
        from .models.graph_diffusion import DEFAULT_STEPS, POSITION_TEMPERATURE, lift
        steps = DEFAULT_STEPS if steps is None else steps
        temperature = POSITION_TEMPERATURE if temperature is None else temperature
        if not 0 <= temperature <= 2:
            raise ValueError(f"temperature: got {temperature}, expected 0 to 2")
        if not isinstance(graph, SceneGraph):
            raise ValueError(f"graph: got {type(graph).__name__}, expected a SceneGraph "
                             "(SceneGraph.from_dict / from_json read the JSON format)")
        _check_samples(n)
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps: got {steps}, expected 1 to 1000")
        model = self.model("graph_diffusion")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        with torch.inference_mode():
            return lift(model, [graph] * n, steps, generator, temperature)

    def generate_images(self, graphs3d: list[SceneGraph], texts: list[str | None], steps: int | None = None,
                        guidance: float | None = None, seed: int = 0, use_graph: bool = True,
                        on_step=None, truncation: float | None = None,
                        candidates: int = IMAGE_CANDIDATES, repairs: int = IMAGE_REPAIRS) -> list[np.ndarray]:
        """One image per (3DSG, caption) pair: ``generate_image_tokens`` decoded by the VQ-VAE.
        Returns (S, S, 3) uint8 images; raises ValueError for a bad graph or setting."""
        return self.detokenize(self.generate_image_tokens(graphs3d, texts, steps, guidance, seed, use_graph,
                                                          on_step, truncation, candidates, repairs))

    def generate_image_tokens(self, graphs3d: list[SceneGraph], texts: list[str | None], steps: int | None = None,
                              guidance: float | None = None, seed: int = 0, use_graph: bool = True,
                              on_step=None, truncation: float | None = None,
                              candidates: int = IMAGE_CANDIDATES, repairs: int = IMAGE_REPAIRS) -> torch.Tensor:
        """One (grid, grid) VQ token map per (3DSG, caption) pair, drawn in one batch by the image
        diffusion from ``seed``; ``detokenize`` turns them into images.

        Generate, then verify: ``candidates`` token maps are drawn per pair, the verifier (a second
        detector, ``BUILT_AS``) reads each decoded, and the one that agrees best with its 3DSG is kept
        (``image_agreement``; on ties the first drawn). ``candidates=1`` keeps the one draw unread.
        Then, ``repairs`` times, where the verifier did not find an object of the 3DSG, or found both
        ends of a relation that does not hold, the cells the camera shows that object (the relation's
        subject) in (``ImageDiffusion.object_cells``) are drawn again, ``candidates`` times around the
        kept tokens, and a redrawn map that agrees better replaces the kept one (inpainting: the
        absorbing diffusion keeps every token it is given).
        A caption of None (or "") leaves the text out; ``use_graph=False`` leaves the 3DSG out (the
        "without 3DSG" ablation: one draw per pair, nothing to verify it against). ``truncation``
        (0-1] is the probability mass each prediction keeps (default
        ``image_diffusion.DEFAULT_TRUNCATION``). Every object of a 3DSG needs position and size
        (``lift_to_3d`` gives them). Returns (B, grid, grid) int64 tokens on the CPU; raises
        ValueError for a bad graph or setting.
        """
        from .models.clip import encode_texts
        from .models.dgae import graph_features
        from .models.image_diffusion import DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_TRUNCATION, sample
        steps = DEFAULT_STEPS if steps is None else steps
        guidance = DEFAULT_GUIDANCE if guidance is None else guidance
        truncation = DEFAULT_TRUNCATION if truncation is None else truncation
        if not 0 < truncation <= 1:
            raise ValueError(f"truncation: got {truncation}, expected more than 0 and at most 1")
        if len(texts) != len(graphs3d):
            raise ValueError(f"texts: got {len(texts)} captions for {len(graphs3d)} graphs, expected one each")
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps: got {steps}, expected 1 to 1000")
        if not 0 <= guidance <= 20:
            raise ValueError(f"guidance: got {guidance}, expected 0 to 20")
        if not (isinstance(candidates, int) and 1 <= candidates <= MAX_SAMPLES):
            raise ValueError(f"candidates: got {candidates!r}, expected 1 to {MAX_SAMPLES} images per image")
        if not (isinstance(repairs, int) and 0 <= repairs <= MAX_REPAIRS):
            raise ValueError(f"repairs: got {repairs!r}, expected 0 to {MAX_REPAIRS} rounds")
        for g in graphs3d:
            _check_3dsg(g)
        k = candidates if use_graph else 1
        model = self.model("image_diffusion")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        rounds = 1 + (repairs if k > 1 else 0)
        progress = (lambda done: None if on_step is None else lambda step, n: on_step(done + step, rounds * n))
        with torch.inference_mode(), self._autocast():
            cond = dict(self._cached(("3dsg", *graphs3d), lambda: graph_features(self.model("dgae"), graphs3d)))
            said = torch.tensor([bool(t) for t in texts], device=self.device)
            texts = [t or "" for t in texts]
            text = self._cached(("text", *texts), lambda: encode_texts(self.model("clip"), texts).float())
            cond.update(text=text, use_text=said, use_graph=torch.full_like(said, use_graph))
            drawn = sample(model, {name: v.repeat_interleave(k, 0) for name, v in cond.items()},
                           steps, generator, guidance, truncation, progress(0)).cpu()
        if k == 1:
            return drawn
        kept, checks = self._keep_agreeing(graphs3d, drawn, k)
        for done in range(1, rounds):
            with torch.inference_mode(), self._autocast():
                redo = _cells_to_redraw(model.object_cells(cond).float().cpu(),
                                        [_to_redraw(g, c) for g, c in zip(graphs3d, checks)])
                todo = [i for i in range(len(graphs3d)) if redo[i].any()]
                if not todo:
                    break
                pick = torch.tensor(todo, device=self.device)
                start = kept[todo].flatten(1).masked_fill(redo[todo], model.config.codebook)
                redrawn = sample(model, {name: v[pick].repeat_interleave(k, 0) for name, v in cond.items()},
                                 steps, generator, guidance, truncation, progress(done * steps),
                                 start=start.repeat_interleave(k, 0)).cpu()
            best, best_checks = self._keep_agreeing([graphs3d[i] for i in todo], redrawn, k)
            for j, i in enumerate(todo):
                if agreement(best_checks[j]) > agreement(checks[i]):
                    kept[i], checks[i] = best[j], best_checks[j]
        return kept

    def _keep_agreeing(self, graphs3d: list[SceneGraph], drawn: torch.Tensor, k: int):
        """Of ``k`` consecutive token maps per 3DSG in ``drawn`` (B * k, grid, grid), the one the
        verifier reads as agreeing best with it (the first of equals): (B, grid, grid) tokens and,
        per 3DSG, the verifier's (found, holds) of the one kept (``evaluate.faithfulness``)."""
        from .evaluate import faithfulness
        read = self.detect(self.detokenize(drawn), reader="verifier")
        checks = [faithfulness(g, d) for g, d in zip([g for g in graphs3d for _ in range(k)], read)]
        best = torch.tensor([agreement(c) for c in checks]).view(len(graphs3d), k).argmax(1)
        kept = drawn.view(len(graphs3d), k, *drawn.shape[1:])[torch.arange(len(graphs3d)), best]
        return kept.clone(), [checks[i * k + int(b)] for i, b in enumerate(best)]

    def generate_image(self, graph3d: SceneGraph, text: str | None = None, n: int = 1, steps: int | None = None,
                       guidance: float | None = None, seed: int = 0, on_step=None,
                       candidates: int = IMAGE_CANDIDATES) -> list[np.ndarray]:
        """3DSG (+ optional caption) -> ``n`` images (``generate_images``)."""
        _check_samples(n)
        return self.generate_images([graph3d] * n, [text] * n, steps, guidance, seed, on_step=on_step,
                                    candidates=candidates)

    def text_to_image(self, text: str, n: int = 1, steps: int | None = None, guidance: float | None = None,
                      seed: int = 0, on_step=None, candidates: int = IMAGE_CANDIDATES) -> dict:
        """ST2I end to end: text -> TSG -> 3DSG -> ``n`` images, each the best of ``candidates``
        (``generate_image_tokens``). Returns {"tsg", "graph3d", "images"}."""
        _check_samples(n)
        tsg = self.parse(text)
        if not tsg.objects:
            raise ValueError("text: no object found in the sentence to draw")
        graph3d = self.lift_to_3d(tsg, seed=seed)
        return {"tsg": tsg, "graph3d": graph3d,
                "images": self.generate_image(graph3d, text, n, steps, guidance, seed, on_step, candidates)}

    def generate_captions(self, graphs3d: list[SceneGraph], images: list[np.ndarray], steps: int | None = None,
                          seed: int = 0, use_graph: bool = True,
                          candidates: tuple[int, ...] = CAPTION_CANDIDATES) -> list[str]:
        """One caption per (3DSG, image) pair, drawn in batches by the text diffusion from ``seed``.

        Generate, then verify: ``candidates[0]`` captions are drawn per pair and the one whose stated
        relations agree best with its 3DSG is kept (``caption_agreement``; on ties a fluent one, all
        of whose word trigrams the training captions use (``caption_grammar``), then the one the text
        diffusion found likeliest as it drew it, ``text_diffusion.sample``'s log-probability). A pair
        whose best caption so far is not fluent or does not state at least one relation that holds
        there and none that fails (and whose 3DSG has two objects or more) gets ``candidates[1]``
        more, and so on: one round per entry, at most 4. ``use_graph=False`` leaves the 3DSG out (the
        "image only" ablation; one caption, nothing to verify it against). Every object of a 3DSG
        needs position and size. Raises ValueError for a bad graph, image or setting.
        """
        from .models.dgae import graph_features
        from .models.text_diffusion import DEFAULT_STEPS, sample
        from .textparse import parse_texts
        steps = DEFAULT_STEPS if steps is None else steps
        if len(images) != len(graphs3d):
            raise ValueError(f"images: got {len(images)} images for {len(graphs3d)} graphs, expected one each")
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps: got {steps}, expected 1 to 1000")
        if (not isinstance(candidates, (tuple, list)) or not 1 <= len(candidates) <= 4
                or not all(isinstance(k, int) and 1 <= k <= MAX_SAMPLES for k in candidates)):
            raise ValueError(f"candidates: got {candidates}, expected 1 to 4 rounds of 1 to {MAX_SAMPLES} captions")
        for g in graphs3d:
            _check_3dsg(g)
        tokens = self._cached(("image", *map(_image_key, images)),
                              lambda: self.tokenize(images).flatten(1).to(self.device))
        generator = torch.Generator(device=self.device).manual_seed(seed)
        with torch.inference_mode(), self._autocast():
            cond = dict(self._cached(("3dsg", *graphs3d), lambda: graph_features(self.model("dgae"), graphs3d)))
        cond.update(image=tokens, use_graph=torch.full((len(images),), use_graph, device=self.device))
        # per pair: (agreement, fluent, log-prob, relations stated, caption)
        best: list[tuple | None] = [None] * len(graphs3d)
        pending = list(range(len(graphs3d)))
        for k in candidates if use_graph else (1,):
            pick = torch.tensor(pending, device=self.device)
            with torch.inference_mode(), self._autocast():
                drawn, log_probs = sample(self.model("text_diffusion"), {name: v[pick] for name, v in cond.items()},
                                          [graphs3d[i] for i in pending], steps, generator, copies=k)
            repeated = [graphs3d[i] for i in pending for _ in range(k)]
            if not use_graph:
                return drawn
            unseen = self.model("caption_grammar").unseen(drawn)
            for j, (caption, tsg, g) in enumerate(zip(drawn, parse_texts(drawn), repeated)):
                i, rank = pending[j // k], (caption_agreement(tsg, g), unseen[j] == 0, float(log_probs[j]))
                if best[i] is None or rank > best[i][:3]:
                    best[i] = (*rank, len(tsg.spatial_relations()), caption)
            # settled: the best is fluent and states one relation or more, all of which hold, or there
            # is nothing to relate
            pending = [i for i in pending if len(graphs3d[i].objects) > 1
                       and not (best[i][1] and 0 < best[i][3] == best[i][0])]
            if not pending:
                break
        return [caption for *_, caption in best]

    def generate_caption(self, graph3d: SceneGraph, image: np.ndarray | None = None, n: int = 1,
                         steps: int | None = None, seed: int = 0) -> list[str]:
        """3DSG (+ the image it describes) -> ``n`` captions. Without an image, one is drawn from the
        3DSG first (``generate_image``), so an edited 3DSG can be captioned on its own."""
        _check_samples(n)
        if image is None:
            image = self.generate_image(graph3d, None, 1, seed=seed)[0]
        return self.generate_captions([graph3d] * n, [image] * n, steps, seed)

    def image_to_text(self, image: np.ndarray, n: int = 1, steps: int | None = None, seed: int = 0) -> dict:
        """SI2T end to end: image -> VSG -> 3DSG -> ``n`` captions. Returns {"vsg", "graph3d", "captions"}."""
        _check_samples(n)
        vsg = self.detect([image])[0].graph
        graph3d = self.lift_to_3d(vsg, seed=seed)
        return {"vsg": vsg, "graph3d": graph3d, "captions": self.generate_caption(graph3d, image, n, steps, seed)}


def _check_samples(n: int) -> None:
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n: got {n}, expected 1 to {MAX_SAMPLES} samples")


def _check_3dsg(graph: SceneGraph) -> None:
    """Raise ValueError unless ``graph`` is a SceneGraph whose objects all have position and size."""
    if not isinstance(graph, SceneGraph):
        raise ValueError(f"graph: got {type(graph).__name__}, expected a SceneGraph")
    for i, o in enumerate(graph.objects):
        if o.position is None or o.size is None:
            raise ValueError(f"objects[{i}] ({o.label}): no position/size; lift the graph to 3D first")
