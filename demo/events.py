"""The studio's model events: each arrow of the data flow (parse, detect, lift, generate images,
generate captions) as a function of the tables on screen, and "regenerate", which runs only the
arrows downstream of what was edited.

Each pipeline tab keeps a ``TabState`` in ``gr.State``: the input the source graph (TSG or VSG) was
read from, the last good graphs, and which source graph the 3DSG was lifted from. A table that does
not read (a bad cell) raises ``gr.Error`` naming the cell, and the state keeps the last good graphs.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, replace

import gradio as gr
import numpy as np
import pandas as pd

from sd3core.evaluate import faithfulness, relation_correctness
from sd3core.graph import SceneGraph
from sd3core.images import read_image
from sd3core.models.image_diffusion import DEFAULT_GUIDANCE, DEFAULT_STEPS as IMAGE_STEPS
from sd3core.pipeline import IMAGE_CANDIDATES, IMAGE_REPAIRS, MAX_IMAGE_PIXELS, MAX_SAMPLES, Engine

from .figures import box_annotations, object_name, scene_figure, token_grid_image
from .messages import shown_as_messages
from .tables import from_tables, to_tables

MAX_SEED = 2**31 - 1
DEFAULT_SAMPLES = 4  # images or captions per press, as the settings start
EACH_ARROWS_STEPS = 0  # the steps setting that gives each arrow its own default (lift, image, caption)


def _no_progress(*args, **kwargs) -> None:
    """The progress callback of runs nobody watches (examples being cached)."""


@dataclass(frozen=True)
class TabState:
    """What one pipeline tab remembers between events (``None``: not there yet).

    ``sentence``: the text the TSG was parsed from; ``image``: the (H, W, 3) uint8 image the VSG was
    detected in; ``read``: the source graph as parsed/detected; ``source``: the last good source
    graph (maybe edited); ``lifted_from``: the source graph ``graph3d`` was lifted from;
    ``graph3d``: the last good 3DSG (maybe edited).
    """
    sentence: str | None = None
    image: np.ndarray | None = None
    read: SceneGraph | None = None
    source: SceneGraph | None = None
    lifted_from: SceneGraph | None = None
    as_lifted: SceneGraph | None = None
    graph3d: SceneGraph | None = None


def _seed(seed) -> int:
    """The seed as an int in 0..MAX_SEED; ValueError otherwise."""
    if seed is None or not float(seed).is_integer() or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed: got {seed!r}, expected a whole number from 0 to {MAX_SEED}")
    return int(seed)


def _count(value, name: str) -> int:
    """A slider's whole number (samples, steps); ValueError for anything else."""
    if value is None or not float(value).is_integer():
        raise ValueError(f"{name}: got {value!r}, expected a whole number")
    return int(value)


def _steps(value) -> int | None:
    """The steps slider's value for the engine: None (the arrow's own default) for
    ``EACH_ARROWS_STEPS``, else the whole number; ValueError for anything else."""
    steps = _count(value, "steps")
    return None if steps == EACH_ARROWS_STEPS else steps


def _ticks(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)}"


def _status(*parts: str) -> str:
    """The status line: the parts joined by "; " as one sentence."""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def faithfulness_html(graph3d: SceneGraph, checks: list[tuple[list[bool], list[bool]]]) -> str:
    """One card per image: every object of ``graph3d`` found or not, every spatial relation held
    or not, as the detector reads the image (``checks``: ``evaluate.faithfulness`` per image)."""
    names = {o.id: object_name(o) for o in graph3d.objects}
    cards = []
    for k, (found, holds) in enumerate(checks, start=1):
        lines = [f"{_mark(ok)} {html.escape(names[o.id])}" for o, ok in zip(graph3d.objects, found)]
        lines += [f"{_mark(ok)} {html.escape(f'{names[r.subject]} {r.predicate} {names[r.object]}')}"
                  for r, ok in zip(graph3d.spatial_relations(), holds)]
        cards.append(f"<div class='sd3-card'><b>Image {k}</b>: objects found {_ticks(found)}, relations "
                     f"hold {_ticks(holds)}<br>{'<br>'.join(lines)}</div>")
    chosen = (f"<p>Each image is the best of {IMAGE_CANDIDATES} drawn, as a second detector (the verifier) "
              f"reads them, with up to {IMAGE_REPAIRS} more rounds redrawing where it found no object of "
              "the 3DSG; the ticks are the studio's detector's.</p>")
    return f"{chosen}<div class='sd3-cards'>{''.join(cards)}</div>"


def captions_markdown(captions: list[str], stated: list[SceneGraph], checks: list[list[bool]]) -> str:
    """Each caption with every spatial relation it states, ✓ when it holds in the 3DSG."""
    lines = []
    for k, (caption, tsg, holds) in enumerate(zip(captions, stated, checks), start=1):
        names = {o.id: " ".join([*o.attributes, o.label]) for o in tsg.objects}
        said = [f"{_mark(ok)} {names[r.subject]} {r.predicate} {names[r.object]}"
                for r, ok in zip(tsg.spatial_relations(), holds)]
        lines.append(f"{k}. “{caption or '(empty caption)'}” — "
                     + ("; ".join(said) if said else "states no spatial relation"))
    return "\n".join(lines)


class StudioEvents:
    """The event functions of the two pipeline tabs, over one ``Engine``. Every public method is
    wrapped by ``shown_as_messages``; tables are pandas frames in the layout of ``demo.tables``."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # --- sources: text -> TSG, image -> VSG ---

    @shown_as_messages
    def parse(self, text: str):
        """Sentence -> TSG tables. Returns (objects, relations, state, status)."""
        if not text or not text.strip():
            raise ValueError("text: empty; write a sentence such as 'a red cube to the left of a blue sphere'")
        tsg = self.engine.parse(text)
        if not tsg.objects:
            gr.Warning("No object found in the sentence; name shapes such as cube, sphere, cone.")
        spatial = SceneGraph("tsg", tsg.objects, tsg.spatial_relations())
        left_out = len(tsg.relations) - len(spatial.relations)
        if left_out:
            gr.Warning(f"{left_out} relation(s) outside the nine predicates left out "
                       f"({', '.join(r.predicate for r in tsg.relations if r not in spatial.relations)}).")
        status = f"Parsed: {len(spatial.objects)} objects, {len(spatial.relations)} relations."
        return (*to_tables(spatial), TabState(sentence=text, read=spatial, source=spatial), status)

    @shown_as_messages
    def detect(self, image_file: str | None, progress=gr.Progress()):
        """Image file -> VSG. Returns (annotated image, objects, relations, state, status)."""
        if not image_file:
            raise ValueError("image: none uploaded; drop an image file or pick an example")
        image = read_image(image_file, MAX_IMAGE_PIXELS).copy()  # writable, as torch wants
        progress(0, desc="Detecting objects")
        vsg = self.engine.detect([image])[0].graph
        status = f"Detected: {len(vsg.objects)} objects, {len(vsg.relations)} relations."
        return (box_annotations(image, vsg), *to_tables(vsg),
                TabState(image=image, read=vsg, source=vsg), status)

    # --- examples: every arrow at the default settings, for the lazily cached example rows ---

    @shown_as_messages
    def text_example(self, sentence: str):
        """An example sentence through parse, lift and images at the default settings (seed 0).
        Returns (TSG objects, TSG relations, figure, 3DSG objects, 3DSG relations, gallery,
        faithfulness HTML, status); ``example_state`` rebuilds the tab's state from them."""
        objects, relations, state, _ = self.parse(sentence)
        if not state.source.objects:
            raise ValueError("text: no object found in the sentence to draw")
        state = self._lift(state.source, state, EACH_ARROWS_STEPS, 0, _no_progress)
        gallery, _, checks, note = self._images(state, DEFAULT_SAMPLES, EACH_ARROWS_STEPS, DEFAULT_GUIDANCE, 0,
                                                False, _no_progress)
        return (objects, relations, scene_figure(state.graph3d), *to_tables(state.graph3d), gallery, checks,
                _status("example at the default settings", note))

    @shown_as_messages
    def image_example(self, image_file: str):
        """An example image through detect, lift and captions at the default settings (seed 0).
        Returns (annotated image, VSG objects, VSG relations, figure, 3DSG objects, 3DSG relations,
        captions markdown, status); ``example_state`` rebuilds the tab's state from them."""
        boxes, objects, relations, state, _ = self.detect(image_file, _no_progress)
        if not state.source.objects:
            raise ValueError("image: the detector found no objects in it to caption")
        state = self._lift(state.source, state, EACH_ARROWS_STEPS, 0, _no_progress)
        captions, note = self._captions(state, DEFAULT_SAMPLES, EACH_ARROWS_STEPS, 0, _no_progress)
        return (boxes, objects, relations, scene_figure(state.graph3d), *to_tables(state.graph3d), captions,
                _status("example at the default settings", note))

    @shown_as_messages
    def example_state(self, kind: str, read_from: str, objects, relations, objects3d, relations3d) -> TabState:
        """The state of a tab showing a cached example (the cache keeps what is on screen, not the
        state): the sentence (kind "tsg") or image file (kind "vsg") ``read_from``, the source graph
        as read and lifted, and its 3DSG, all from the tables."""
        source = from_tables(kind, objects, relations)
        graph3d = from_tables("3dsg", objects3d, relations3d)
        image = read_image(read_from, MAX_IMAGE_PIXELS).copy() if kind == "vsg" else None
        return TabState(sentence=read_from if kind == "tsg" else None, image=image, read=source, source=source,
                        lifted_from=source, as_lifted=graph3d, graph3d=graph3d)

    # --- the arrows every tab shares ---

    def _lift(self, source: SceneGraph, state: TabState, steps, seed, progress) -> TabState:
        progress(0, desc="Lifting to 3D (graph diffusion)")
        graph3d = self.engine.lift_to_3d(source, steps=_steps(steps), seed=_seed(seed))
        return replace(state, source=source, lifted_from=source, as_lifted=graph3d, graph3d=graph3d)

    @shown_as_messages
    def lift(self, kind: str, objects: pd.DataFrame, relations: pd.DataFrame, state: TabState,
             steps, seed, progress=gr.Progress()):
        """Source tables (kind "tsg" or "vsg") -> 3DSG. Returns (figure, objects, relations, state, status)."""
        state = self._lift(from_tables(kind, objects, relations), state, steps, seed, progress)
        return (scene_figure(state.graph3d), *to_tables(state.graph3d), state,
                f"Lifted to 3D: {len(state.graph3d.relations)} relations.")

    def _downstream(self, kind: str, objects, relations, objects3d, relations3d, state: TabState,
                    steps, seed, progress) -> tuple[TabState, str]:
        """The 3DSG to draw from after edits: re-lifted when the source tables changed since the
        last lift, else read from the 3DSG tables. Returns (state, what ran)."""
        source = from_tables(kind, objects, relations)
        if state.lifted_from is None:
            return self._lift(source, state, steps, seed, progress), f"lifted the {kind.upper()} to 3D"
        if source != state.lifted_from:
            return self._lift(source, state, steps, seed, progress), f"{kind.upper()} edited: re-lifted to 3D"
        graph3d = from_tables("3dsg", objects3d, relations3d)
        edited = "3DSG edited" if graph3d != state.graph3d else "nothing edited"
        return replace(state, source=source, graph3d=graph3d), edited

    # --- text -> image ---

    def _images(self, state: TabState, n, steps, guidance, seed, show_tokens: bool, progress):
        """Draw images from ``state.graph3d`` and check each: (gallery items, token-grid pictures
        (none unless ``show_tokens``), faithfulness HTML, note)."""
        graph3d = state.graph3d
        if not graph3d.objects:
            raise ValueError("3DSG object table: no objects; press 'Lift to 3D' first")
        unedited = state.sentence is not None and state.source == state.read and graph3d == state.as_lifted
        n, steps = _count(n, "samples"), _steps(steps)
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"samples: got {n}, expected 1 to {MAX_SAMPLES}")
        progress((0, steps or IMAGE_STEPS), desc="Image diffusion", unit="steps")
        text = state.sentence if unedited else None
        tokens = self.engine.generate_image_tokens(
            [graph3d] * n, [text] * n, steps=steps, guidance=guidance, seed=_seed(seed),
            on_step=lambda k, total: progress((k, total), desc="Image diffusion", unit="steps"))
        images = self.engine.detokenize(tokens)
        progress(1.0, desc="Checking the images")
        checks = [faithfulness(graph3d, d) for d in self.engine.detect(images)]
        gallery = [(im, f"#{k}: relations {_ticks(holds)} ✓, objects {_ticks(found)} found")
                   for k, (im, (found, holds)) in enumerate(zip(images, checks), start=1)]
        grids = ([(token_grid_image(im, t.numpy()), f"#{k}: VQ tokens")
                  for k, (im, t) in enumerate(zip(images, tokens), start=1)] if show_tokens else [])
        note = ("from the sentence and the 3DSG" if unedited
                else "from the 3DSG alone (the graphs were edited away from the sentence)")
        return gallery, grids, faithfulness_html(graph3d, checks), f"drew {len(images)} images {note}"

    @shown_as_messages
    def generate_images(self, objects3d, relations3d, state: TabState, n, steps, guidance, seed,
                        show_tokens=False, progress=gr.Progress()):
        """3DSG tables -> images. Returns (gallery, token grids, faithfulness HTML, state, status)."""
        state = replace(state, graph3d=from_tables("3dsg", objects3d, relations3d))
        gallery, grids, checks, note = self._images(state, n, steps, guidance, seed, show_tokens, progress)
        return gallery, grids, checks, state, _status(note)

    @shown_as_messages
    def regenerate_images(self, objects, relations, objects3d, relations3d, state: TabState, n, steps,
                          guidance, seed, show_tokens=False, progress=gr.Progress()):
        """TSG + 3DSG tables -> only the arrows downstream of the edits. Returns (figure, 3DSG
        objects, 3DSG relations, gallery, token grids, faithfulness HTML, state, status)."""
        state, ran = self._downstream("tsg", objects, relations, objects3d, relations3d, state, steps,
                                      seed, progress)
        gallery, grids, checks, note = self._images(state, n, steps, guidance, seed, show_tokens, progress)
        return (scene_figure(state.graph3d), *to_tables(state.graph3d), gallery, grids, checks, state,
                _status(ran, note))

    # --- image -> text ---

    def _captions(self, state: TabState, n, steps, seed, progress) -> tuple[str, str]:
        """Captions of ``state.image`` with ``state.graph3d``, checked: (markdown, note)."""
        if state.image is None:
            raise ValueError("image: none read yet; upload an image and press Detect first")
        if not state.graph3d.objects:
            raise ValueError("3DSG object table: no objects; press 'Lift to 3D' first")
        progress(0, desc="Text diffusion")
        captions = self.engine.generate_caption(state.graph3d, state.image, n=_count(n, "samples"),
                                                steps=_steps(steps), seed=_seed(seed))
        stated = [self.engine.parse(c) if c.strip() else SceneGraph("tsg") for c in captions]
        checks = [relation_correctness(tsg, state.graph3d) for tsg in stated]
        return captions_markdown(captions, stated, checks), f"wrote {len(captions)} captions"

    @shown_as_messages
    def generate_captions(self, objects3d, relations3d, state: TabState, n, steps, seed,
                          progress=gr.Progress()):
        """3DSG tables -> captions. Returns (captions markdown, state, status)."""
        state = replace(state, graph3d=from_tables("3dsg", objects3d, relations3d))
        captions, note = self._captions(state, n, steps, seed, progress)
        return captions, state, _status(note)

    @shown_as_messages
    def regenerate_captions(self, objects, relations, objects3d, relations3d, state: TabState, n,
                            steps, seed, progress=gr.Progress()):
        """VSG + 3DSG tables -> only the arrows downstream of the edits. Returns (annotated image,
        figure, 3DSG objects, 3DSG relations, captions markdown, state, status)."""
        if state.image is None:
            raise ValueError("image: none read yet; upload an image and press Detect first")
        state, ran = self._downstream("vsg", objects, relations, objects3d, relations3d, state, steps,
                                      seed, progress)
        captions, note = self._captions(state, n, steps, seed, progress)
        return (box_annotations(state.image, state.source), scene_figure(state.graph3d),
                *to_tables(state.graph3d), captions, state, _status(ran, note))
