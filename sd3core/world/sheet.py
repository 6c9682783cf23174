"""Pictures of world scenes for people: one scene beside its graph, and contact sheets of captions."""
from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..graph import SceneGraph
from .build import CAPTIONS_PER_SCENE
from .describe import describe_many
from .gold import scene_to_3dsg
from .render import render
from .sample import sample_scene

BACKGROUND = (250, 250, 248)
INK = (30, 30, 30)
EDGE_COLOURS = {"on": (200, 60, 40), "in": (40, 120, 200), "next to": (120, 120, 120),
                "above": (220, 140, 40)}


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _describe_seed(seed: int, size: int) -> tuple[Image.Image, SceneGraph, list[str]]:
    scene = sample_scene(seed)
    graph3d = scene_to_3dsg(scene)
    captions = describe_many(graph3d, np.random.default_rng([seed, 1]), CAPTIONS_PER_SCENE)
    return Image.fromarray(render(scene, size=size).rgb), graph3d, [c for c, _ in captions]


def draw_top_view(graph3d: SceneGraph, side: int) -> Image.Image:
    """A bird's-eye map of a 3DSG: x right, depth z up the page; stacked objects are drawn
    offset above their support, with "on"/"in"/"above"/"next to" edges labelled."""
    img = Image.new("RGB", (side, side), BACKGROUND)
    draw = ImageDraw.Draw(img)
    xz = np.array([[o.position[0], o.position[2]] for o in graph3d.objects])
    lift = np.array([o.position[1] - o.size[1] / 2 for o in graph3d.objects])
    lo, hi = xz.min(axis=0) - 1.0, xz.max(axis=0) + 1.0
    scale = (side - 40) / max(hi - lo)
    pts = {o.id: (20 + (xz[i, 0] - lo[0]) * scale,
                  side - 20 - (xz[i, 1] - lo[1]) * scale - lift[i] * scale * 0.6)
           for i, o in enumerate(graph3d.objects)}
    font = _font(max(10, side // 28))
    for r in graph3d.relations:
        if r.predicate in EDGE_COLOURS and (r.predicate != "next to" or r.subject < r.object):
            (x0, y0), (x1, y1) = pts[r.subject], pts[r.object]
            draw.line([(x0, y0), (x1, y1)], fill=EDGE_COLOURS[r.predicate], width=2)
            draw.text(((x0 + x1) / 2, (y0 + y1) / 2), r.predicate, fill=EDGE_COLOURS[r.predicate],
                      font=font)
    for o in graph3d.objects:
        x, y = pts[o.id]
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=INK)
        draw.text((x + 8, y - 8), f"{o.id}: {' '.join(o.attributes[:2])} {o.label}", fill=INK,
                  font=font)
    draw.text((6, 4), "top view (camera at the bottom)", fill=(110, 110, 110), font=font)
    return img


def scene_card(seed: int, size: int = 256) -> Image.Image:
    """The scene of ``seed`` rendered at ``size``, its 3DSG's top view beside it, captions below."""
    image, graph3d, captions = _describe_seed(seed, size)
    font = _font(max(11, size // 20))
    lines = [f"seed {seed}"] + [f"- {line}" for c in captions for line in textwrap.wrap(c, 70)]
    line_h = font.size + 4
    card = Image.new("RGB", (2 * size, size + line_h * len(lines) + 10), BACKGROUND)
    card.paste(image, (0, 0))
    card.paste(draw_top_view(graph3d, size), (size, 0))
    draw = ImageDraw.Draw(card)
    for i, line in enumerate(lines):
        draw.text((6, size + 5 + i * line_h), line, fill=INK, font=font)
    return card


def contact_sheet(seeds: list[int], columns: int = 4, size: int = 192) -> Image.Image:
    """A grid of scenes, each with its first caption wrapped below it."""
    font = _font(13)
    line_h, text_lines = 17, 7
    cell_w, cell_h = size + 8, size + line_h * text_lines + 10
    rows = (len(seeds) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for k, seed in enumerate(seeds):
        image, _, captions = _describe_seed(seed, size)
        x, y = (k % columns) * cell_w + 4, (k // columns) * cell_h + 4
        sheet.paste(image, (x, y))
        for i, line in enumerate(textwrap.wrap(captions[0], 27)[:text_lines]):
            draw.text((x, y + size + 4 + i * line_h), line, fill=INK, font=font)
    return sheet
