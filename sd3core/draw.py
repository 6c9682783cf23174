"""Pictures for people: detections drawn on images, text panels, and image grids."""
from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_COLOUR = (255, 40, 200)


def draw_detections(image: np.ndarray, detections, scale: int = 2) -> Image.Image:
    """(H, W, 3) uint8 image, enlarged ``scale`` times, with each detected box and its
    "colour size label" drawn (``detections``: a ``detector.Detections``)."""
    h, w = image.shape[:2]
    out = Image.fromarray(image).resize((w * scale, h * scale), Image.NEAREST)
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=9 * scale // 2 + 3)
    for obj in detections.graph.objects:
        x0, y0, x1, y1 = (v * s for v, s in zip(obj.box, (out.width, out.height) * 2))
        draw.rectangle([x0, y0, x1, y1], outline=BOX_COLOUR, width=max(1, scale // 2))
        draw.text((x0 + 2, max(0, y0 - font.size - 2)), " ".join([*obj.attributes[:2], obj.label]),
                  fill=BOX_COLOUR, font=font)
    return out


def image_grid(rows: list[list[Image.Image]], pad: int = 4, background=(250, 250, 248)) -> Image.Image:
    """Images laid out row by row, each cell the size of the largest image."""
    cw = max(im.width for row in rows for im in row)
    ch = max(im.height for row in rows for im in row)
    grid = Image.new("RGB", (max(len(r) for r in rows) * (cw + pad) + pad, len(rows) * (ch + pad) + pad),
                     background)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid.paste(im, (pad + c * (cw + pad), pad + r * (ch + pad)))
    return grid


def text_panel(paragraphs: list[str], width: int, height: int, size: int = 13) -> Image.Image:
    """A white ``width`` x ``height`` picture of the paragraphs, wrapped to fit the width, a blank
    line between them (what does not fit at the bottom is cut)."""
    panel = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default(size=size)
    chars = max(8, int(width / (0.55 * size)))
    lines = [line for p in paragraphs for line in [*textwrap.wrap(p, chars), ""]]
    draw.multiline_text((6, 6), "\n".join(lines), fill=(20, 20, 20), font=font, spacing=3)
    return panel
