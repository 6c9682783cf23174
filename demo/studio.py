"""The studio's page: layout and event wiring. Event functions live in ``events`` (model arrows)
and ``inspector`` (JSON in and out); this module only places components and connects them.

Every action has an ``api_name``; model events share one concurrency slot group
(``hosting.MODEL_CONCURRENCY_ID``, limit ``SD3_CONCURRENCY``), cheap events are unlimited.
"""
from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from sd3core.graph import SceneGraph
from sd3core.models import graph_diffusion, image_diffusion, text_diffusion
from sd3core.models.image_diffusion import DEFAULT_GUIDANCE
from sd3core.pipeline import IMAGE_CANDIDATES, MAX_SAMPLES, Engine
from sd3core.vocab import PREDICATES, SHAPES

from .events import DEFAULT_SAMPLES, EACH_ARROWS_STEPS, MAX_SEED, StudioEvents, TabState
from .figures import scene_figure
from .hosting import MODEL_CONCURRENCY_ID, examples_cache, gpu, model_concurrency
from .inspector import compare_graphs, graphs_of_tab, inspect_graph, load_json_file
from .messages import shown_as_messages
from .tables import empty_tables, set_predicate

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
MAX_STEPS = 100  # the settings slider's top; the engine takes up to 1000
STEPS_LABEL = (f"Diffusion steps, every arrow ({EACH_ARROWS_STEPS}: each its own default: lift "
               f"{graph_diffusion.DEFAULT_STEPS}, image {image_diffusion.DEFAULT_STEPS} for each of the "
               f"{IMAGE_CANDIDATES} drawn and each repair round, caption {text_diffusion.DEFAULT_STEPS})")
CHEAP = {"concurrency_limit": None}  # events that run no model: never wait for one another

INTRO = f"""# SD3 Studio
Spatial scene graphs: type a sentence or drop an image, edit the scene graph it reads as tables,
lift it to a **3D scene graph** and regenerate an image or a caption. Under every output, each relation
is checked: ✓ holds, ✗ does not. The world has six shapes ({', '.join(SHAPES)}); the nine relations
are {', '.join(PREDICATES)}."""


def random_seed() -> int:
    """A fresh seed for the settings."""
    return random.randint(0, MAX_SEED)


@shown_as_messages
def edit_predicate(relations, row, predicate):
    """The relation table with row ``row`` (from 1) given ``predicate`` (one of the nine)."""
    return set_predicate(relations, row, predicate)


@dataclass
class GraphPanel:
    """The components shared by both pipeline tabs: the source graph's tables with the predicate
    editor, the 3D view, the 3DSG tables, the action buttons and the status line."""
    objects: gr.Dataframe
    relations: gr.Dataframe
    row: gr.Number
    predicate: gr.Dropdown
    set_predicate: gr.Button
    lift: gr.Button
    produce: gr.Button
    regenerate: gr.Button
    status: gr.Markdown
    figure: gr.Plot
    objects3d: gr.Dataframe
    relations3d: gr.Dataframe
    state: gr.State


def _table(frame, label: str, elem_id: str) -> gr.Dataframe:
    return gr.Dataframe(value=frame, label=label, interactive=True, wrap=True, max_height=300, elem_id=elem_id)


def _graph_panel(kind: str, produce: str) -> GraphPanel:
    """Lay out a pipeline tab's graph panel for a ``kind`` ("tsg"/"vsg") source graph."""
    name = kind.upper()
    objects, relations = empty_tables(kind)
    with gr.Row():
        source_objects = _table(objects, f"{name} objects (edit cells, add or delete rows)",
                                f"sd3-{kind}-objects")
        source_relations = _table(relations, f"{name} relations (predicate: one of the nine)",
                                  f"sd3-{kind}-relations")
    with gr.Row(equal_height=True):
        row = gr.Number(value=1, precision=0, minimum=1, label="Relation row", scale=1)
        predicate = gr.Dropdown(list(PREDICATES), value=PREDICATES[0], label="Predicate", scale=2)
        set_button = gr.Button("Set predicate of that row", scale=1)
    with gr.Row():
        lift = gr.Button("Lift to 3D")
        produce_button = gr.Button(produce)
        regenerate = gr.Button("Regenerate (runs only what follows the edits)", variant="primary")
    status = gr.Markdown(label="Status")
    objects3d, relations3d = empty_tables("3dsg")
    with gr.Row():
        figure = gr.Plot(value=scene_figure(SceneGraph("3dsg")), label="3D scene graph", scale=3,
                         elem_id=f"sd3-{kind}-figure")
        with gr.Column(scale=2):
            table3d = _table(objects3d, "3DSG objects (position x, y, z and size w, h, d in metres)",
                             f"sd3-{kind}-objects3d")
            relations3d_table = _table(relations3d, "3DSG relations", f"sd3-{kind}-relations3d")
    return GraphPanel(source_objects, source_relations, row, predicate, set_button, lift, produce_button,
                      regenerate, status, figure, table3d, relations3d_table, gr.State(TabState()))


def _read_examples() -> tuple[list[str], list[str], list[str]]:
    """(example sentences, example image paths, example graph JSON texts) from ``assets/examples``."""
    sentences = [line.strip() for line in (EXAMPLES / "sentences.txt").read_text().splitlines() if line.strip()]
    images = sorted(str(p) for p in EXAMPLES.glob("*.png"))
    graphs = [p.read_text() for p in sorted(EXAMPLES.glob("*.json"))]
    return sentences, images, graphs


def _settings() -> tuple[gr.Slider, gr.Slider, gr.Slider, gr.Number, gr.Button, gr.Checkbox]:
    """The settings accordion: samples, diffusion steps, guidance, seed and its random button, and
    whether the text tab shows each image's VQ token grid."""
    with gr.Accordion("Settings", open=False):
        with gr.Row():
            samples = gr.Slider(1, MAX_SAMPLES, value=DEFAULT_SAMPLES, step=1, label="Samples (images or captions)")
            steps = gr.Slider(EACH_ARROWS_STEPS, MAX_STEPS, value=EACH_ARROWS_STEPS, step=1, label=STEPS_LABEL)
            guidance = gr.Slider(0, 20, value=DEFAULT_GUIDANCE, step=0.5, label="Guidance (images; 1: none)")
            with gr.Column():
                seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
                reseed = gr.Button("Random seed", size="sm")
        show_tokens = gr.Checkbox(False, label="Text → Image: show each image's VQ token grid (the codes the "
                                  "image diffusion chose, cell by cell)")
    return samples, steps, guidance, seed, reseed, show_tokens


def build_studio(engine: Engine | None = None) -> gr.Blocks:
    """The studio's Blocks over ``engine`` (default: the shipped checkpoints, loaded on first use)."""
    events = StudioEvents(engine if engine is not None else Engine())
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(examples_cache(events.engine.checkpoint_dir)))
    sentences, images, graphs = _read_examples()
    with gr.Blocks(title="SD3 Studio", analytics_enabled=False) as studio:
        gr.Markdown(INTRO)
        samples, steps, guidance, seed, reseed, show_tokens = _settings()
        reseed.click(random_seed, None, seed, api_name="random_seed", **CHEAP)
        with gr.Tab("Text → Image"):
            text_panel = _text_tab(events, sentences, [samples, steps, guidance, seed, show_tokens])
        with gr.Tab("Image → Text"):
            image_panel = _image_tab(events, images, [samples, steps, seed])
        with gr.Tab("3DSG inspector"):
            _inspector(graphs, text_panel.state, image_panel.state)
    return studio


def _model_events() -> dict:
    """The keyword arguments of a model event: one shared concurrency group and its limit."""
    return {"concurrency_id": MODEL_CONCURRENCY_ID, "concurrency_limit": model_concurrency()}


def _text_tab(events: StudioEvents, sentences: list[str], settings: list) -> GraphPanel:
    """Sentence -> TSG tables -> 3DSG -> images with their faithfulness checks.
    ``settings``: the samples, steps, guidance, seed and show-token-grid components."""
    with gr.Row(equal_height=True):
        text = gr.Textbox(label="Sentence", placeholder="a red cube to the left of a blue sphere",
                          scale=4, elem_id="sd3-sentence")
        parse = gr.Button("Read the sentence", scale=1)
    example_slot = gr.Column()
    panel = _graph_panel("tsg", "Generate images")
    gallery = gr.Gallery(label="Generated images (✓ relations that hold, as the detector reads them)",
                         columns=4, format="png", elem_id="sd3-gallery", height=300)
    grids = gr.Gallery(label="VQ token grids (8 × 8 codes per image)", columns=4, format="png",
                       visible=False, elem_id="sd3-token-grids", height=300)
    checks = gr.HTML(label="Faithfulness")
    settings[4].change(lambda show: gr.Gallery(visible=show), settings[4], grids, api_visibility="private",
                       **CHEAP)
    with example_slot:
        _cached_examples(sentences, text, events.text_example, "tsg", events,
                         [panel.objects, panel.relations, panel.figure, panel.objects3d, panel.relations3d,
                          gallery, checks, panel.status], panel, "Example sentences")
    parse_io = (text, [panel.objects, panel.relations, panel.state, panel.status])
    parse.click(events.parse, *parse_io, api_name="parse", **CHEAP)
    text.submit(events.parse, *parse_io, api_visibility="private", **CHEAP)
    _wire_panel(panel, "tsg", events, settings[1], settings[3])
    panel.produce.click(gpu(events.generate_images), [panel.objects3d, panel.relations3d, panel.state, *settings],
                        [gallery, grids, checks, panel.state, panel.status], api_name="generate_images",
                        **_model_events())
    panel.regenerate.click(
        gpu(events.regenerate_images),
        [panel.objects, panel.relations, panel.objects3d, panel.relations3d, panel.state, *settings],
        [panel.figure, panel.objects3d, panel.relations3d, gallery, grids, checks, panel.state, panel.status],
        api_name="regenerate_images", **_model_events())
    return panel


def _image_tab(events: StudioEvents, images: list[str], settings: list) -> GraphPanel:
    """Image -> VSG tables and boxes -> 3DSG -> captions with their relation checks.
    ``settings``: the samples, steps and seed components."""
    with gr.Row():
        upload = gr.File(label="Image (PNG, JPEG, …)", file_types=["image"], type="filepath",
                         elem_id="sd3-image-file")
        boxes = gr.AnnotatedImage(label="Detected objects (VSG boxes)", format="png",
                                  elem_id="sd3-boxes", height=300)
    detect = gr.Button("Detect objects")
    example_slot = gr.Column()
    panel = _graph_panel("vsg", "Write captions")
    captions = gr.Markdown(label="Captions")
    with example_slot:
        _cached_examples(images, upload, events.image_example, "vsg", events,
                         [boxes, panel.objects, panel.relations, panel.figure, panel.objects3d, panel.relations3d,
                          captions, panel.status], panel, "Example renders")
    detect.click(gpu(events.detect), upload,
                 [boxes, panel.objects, panel.relations, panel.state, panel.status],
                 api_name="detect", **_model_events())
    _wire_panel(panel, "vsg", events, settings[1], settings[2])
    panel.produce.click(gpu(events.generate_captions), [panel.objects3d, panel.relations3d, panel.state, *settings],
                        [captions, panel.state, panel.status], api_name="generate_captions", **_model_events())
    panel.regenerate.click(
        gpu(events.regenerate_captions),
        [panel.objects, panel.relations, panel.objects3d, panel.relations3d, panel.state, *settings],
        [boxes, panel.figure, panel.objects3d, panel.relations3d, captions, panel.state, panel.status],
        api_name="regenerate_captions", **_model_events())
    return panel


def _cached_examples(examples: list[str], source: gr.components.Component, run, kind: str,
                     events: StudioEvents, outputs: list, panel: GraphPanel, label: str) -> None:
    """Example rows for ``source`` (the sentence box or the image upload): a click shows the
    example run through every arrow by ``run`` at the default settings, computed on its first click
    and cached for everyone after (``cache_mode="lazy"``; the cache keeps what is on screen, so the
    tab's state is rebuilt from it by ``events.example_state``)."""
    shown = gr.Examples(examples, source, outputs, fn=gpu(run), cache_examples=True, cache_mode="lazy",
                        label=label)
    state = functools.partial(events.example_state, kind)
    state.__name__ = f"{kind}_example_state"
    shown.cache_event.then(state, [source, panel.objects, panel.relations, panel.objects3d, panel.relations3d],
                           panel.state, api_visibility="private", **CHEAP)


def _wire_panel(panel: GraphPanel, kind: str, events: StudioEvents, steps: gr.Slider, seed: gr.Number) -> None:
    """The events every graph panel has: set a predicate from the dropdown, lift to 3D."""
    panel.set_predicate.click(edit_predicate, [panel.relations, panel.row, panel.predicate], panel.relations,
                              api_name=f"set_{kind}_predicate", **CHEAP)
    lift = functools.partial(events.lift, kind)
    lift.__name__ = f"lift_{kind}"  # spaces.GPU and gradio's logs name events by __name__
    panel.lift.click(gpu(lift),
                     [panel.objects, panel.relations, panel.state, steps, seed],
                     [panel.figure, panel.objects3d, panel.relations3d, panel.state, panel.status],
                     api_name=f"lift_{kind}", **_model_events())


def _inspector(graphs: list[str], text_state: gr.State, image_state: gr.State) -> None:
    """The inspector tab: load, show, save and compare scene-graph JSON."""
    gr.Markdown("Paste or load a scene graph (DESIGN.md JSON, sg2im JSON or a VSD record). "
                "**Show** draws it and offers it as DESIGN.md JSON to download. The tab buttons fetch a "
                "pipeline tab's source graph and 3DSG, list what the lift added and draw the 3DSG.")
    with gr.Row():
        with gr.Column():
            first = gr.Code(value=graphs[0] if graphs else "", language="json", label="Scene graph JSON",
                            max_lines=18)
            load = gr.File(label="Load a .json file", file_types=[".json"], type="filepath", height=80)
            show = gr.Button("Show", variant="primary")
        with gr.Column():
            second = gr.Code(value="", language="json", label="Second graph JSON (to compare)", max_lines=18)
            with gr.Row():
                compare = gr.Button("Compare: what the second adds and drops")
                from_text = gr.Button("Text tab: TSG vs its 3DSG", size="sm")
                from_image = gr.Button("Image tab: VSG vs its 3DSG", size="sm")
    gr.Examples([[g] for g in graphs], first, label="Example graphs")
    status = gr.Markdown(label="Status")
    difference = gr.Markdown(label="Difference")
    objects, relations = empty_tables("3dsg")
    with gr.Row():
        figure3d = gr.Plot(label="3D view", scale=3)
        figure2d = gr.Plot(label="Graph", scale=2)
    with gr.Row():
        object_table = gr.Dataframe(value=objects, label="Objects", interactive=False, wrap=True)
        relation_table = gr.Dataframe(value=relations, label="Relations", interactive=False, wrap=True)
    saved = gr.File(label="Save: the graph as DESIGN.md JSON", interactive=False)
    load.upload(load_json_file, load, first, api_name="load_json_file", **CHEAP)
    shown = [object_table, relation_table, figure3d, figure2d, saved, status]
    show.click(inspect_graph, first, shown, api_name="inspect_graph", **CHEAP)
    compare.click(compare_graphs, [first, second], difference, api_name="compare_graphs", **CHEAP)
    for button, state, name in ((from_text, text_state, "text"), (from_image, image_state, "image")):
        button.click(graphs_of_tab, state, [first, second], api_name=f"{name}_tab_graphs", **CHEAP).success(
            compare_graphs, [first, second], difference, api_visibility="private", **CHEAP).success(
            inspect_graph, second, shown, api_visibility="private", **CHEAP)
