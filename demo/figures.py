"""Pictures of scene graphs: the Plotly 3D view of a 3DSG, the 2D node-link figure of any graph,
the boxes of a VSG as ``gr.AnnotatedImage`` annotations, and a generated image's VQ token grid.

The 3D view draws the camera frame (x right, y up, z depth, metres) with plot axes x -> x,
z (depth) -> plot y, y (up) -> plot z, so "up" is up on screen; the camera sits at the origin.
"""
from __future__ import annotations

from collections import defaultdict

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from sd3core.graph import SceneGraph, SGObject
from sd3core.vocab import COLOURS
from sd3core.world.scene import Camera

GREY = (150, 150, 150)
MARKER_PX_PER_METRE = 18   # marker diameter in pixels per metre of an object's largest extent
MIN_MARKER_PX = 6
SHAPE_SYMBOLS = {"cube": "square", "sphere": "circle", "cylinder": "diamond", "cone": "cross",
                 "pyramid": "x", "bucket": "circle-open"}
EDGE_COLOUR = "rgba(90, 90, 90, 0.8)"
VIEW_OFFSET = np.array([0.35, -0.9, 0.6])  # the 3D view's eye from its centre: right, back, up
TOKEN_CELL_PX = 48  # side of one VQ token's cell in the token-grid picture


def object_name(o: SGObject) -> str:
    """"red large cube #0": attributes, label and id, as the studio names an object everywhere."""
    return " ".join([*o.attributes, o.label]) + f" #{o.id}"


def object_colour(o: SGObject) -> str:
    """The CSS colour of the object's colour attribute, grey when it has none."""
    rgb = next((COLOURS[a] for a in o.attributes if a in COLOURS), GREY)
    return f"rgb{tuple(rgb)}"


def _plot_xyz(points: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 3) camera-frame points (x right, y up, z depth) -> Plotly x, y, z (depth, up) arrays."""
    return {"x": points[:, 0], "y": points[:, 2], "z": points[:, 1]}


def _polylines(segments: list[np.ndarray]) -> np.ndarray:
    """Line strips ((K, 3) arrays) joined into one (M, 3) array with NaN rows between them."""
    gap = np.full((1, 3), np.nan)
    return np.concatenate([part for s in segments for part in (s, gap)]) if segments else np.zeros((0, 3))


def _box_edges(o: SGObject) -> list[np.ndarray]:
    """The 12 edges of the object's axis-aligned bounding box as (2, 3) camera-frame segments."""
    centre, half = np.asarray(o.position), np.asarray(o.size) / 2
    corners = {(i, j, k): centre + half * np.array([i, j, k]) for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)}
    return [np.stack([corners[a], corners[b]]) for a in corners for b in corners
            if a < b and sum(x != y for x, y in zip(a, b)) == 1]


def _ground_and_frustum(placed: list[SGObject]) -> list[go.BaseTraceType]:
    """The ground plane under the lowest object, and the camera at the origin with its view frustum
    (``Camera.fov_deg``) reaching the objects' mean centre, pitched towards it (a 3DSG does not keep
    the camera's pitch)."""
    centres = np.array([o.position for o in placed])
    sizes = np.array([o.size for o in placed])
    ground = float((centres[:, 1] - sizes[:, 1] / 2).min())
    middle = centres.mean(0)
    far = max(float(np.hypot(middle[1], middle[2])), 0.5)
    half = far * np.tan(np.radians(Camera.fov_deg) / 2)
    pitch = np.arctan2(middle[1], max(middle[2], 1e-3))  # up is positive
    turn = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
    corners = np.array([[sx * half, sy * half, far] for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]) @ turn.T
    frustum = [np.stack([np.zeros(3), c]) for c in corners] + [np.concatenate([corners, corners[:1]])]
    lo, hi = centres.min(0) - sizes.max() - 0.5, centres.max(0) + sizes.max() + 0.5
    xs, zs = np.array([lo[0], hi[0], hi[0], lo[0]]), np.array([lo[2], lo[2], hi[2], hi[2]])
    return [
        go.Mesh3d(x=xs, y=zs, z=np.full(4, ground), i=[0, 0], j=[1, 2], k=[2, 3], opacity=0.25,
                  color="rgb(190, 180, 160)", name="ground plane", hoverinfo="name", showlegend=True),
        go.Scatter3d(**_plot_xyz(_polylines(frustum)), mode="lines", name="camera frustum",
                     line={"color": "rgba(60, 110, 200, 0.5)", "width": 2}, hoverinfo="name"),
        go.Scatter3d(x=[0], y=[0], z=[0], mode="markers+text", text=["camera"], name="camera",
                     marker={"size": 4, "color": "rgb(60, 110, 200)", "symbol": "diamond"},
                     hoverinfo="name", showlegend=False)]


def _pair_label(relations: list) -> str:
    """The midpoint label of a related pair: one direction's predicates ("#0 → #1: on, above"),
    the first relation's direction; the other direction's (mostly inverses) are on hover."""
    first = relations[0]
    said = [r.predicate for r in relations if (r.subject, r.object) == (first.subject, first.object)]
    return f"#{first.subject} → #{first.object}: {', '.join(said)}"


def _relation_traces(graph: SceneGraph, at: dict[int, np.ndarray]) -> list[go.BaseTraceType]:
    """One line per related pair of placed objects, labelled at the midpoint (``_pair_label``), every
    relation of the pair named in full on hover."""
    pairs: dict[tuple[int, int], list] = defaultdict(list)
    for r in graph.relations:
        if r.subject in at and r.object in at:
            pairs[tuple(sorted((r.subject, r.object)))].append(r)
    if not pairs:
        return []
    names = {o.id: object_name(o) for o in graph.objects}
    lines = go.Scatter3d(**_plot_xyz(_polylines([np.stack([at[a], at[b]]) for a, b in pairs])),
                         mode="lines", name="relations", line={"color": EDGE_COLOUR, "width": 3},
                         hoverinfo="skip")
    middles = np.array([(at[a] + at[b]) / 2 for a, b in pairs])
    labels = go.Scatter3d(
        **_plot_xyz(middles), mode="text", name="predicates", hoverinfo="text",
        text=[_pair_label(rs) for rs in pairs.values()],
        hovertext=["<br>".join(f"{names[r.subject]} {r.predicate} {names[r.object]}" for r in rs)
                   for rs in pairs.values()],
        textfont={"size": 10, "color": "rgb(70, 70, 70)"})
    return [lines, labels]


def _object_trace(placed: list[SGObject]) -> go.Scatter3d:
    """Objects as labelled markers: colour from the colour attribute, symbol from the shape,
    diameter from the largest extent; hover gives position and size."""
    centres = np.array([o.position for o in placed])
    return go.Scatter3d(
        **_plot_xyz(centres), mode="markers+text", name="objects",
        text=[object_name(o) for o in placed], textposition="top center",
        marker={"color": [object_colour(o) for o in placed],
                "symbol": [SHAPE_SYMBOLS.get(o.label, "circle") for o in placed],
                "size": [max(MIN_MARKER_PX, MARKER_PX_PER_METRE * max(o.size)) for o in placed],
                "line": {"color": "black", "width": 1}, "opacity": 0.9},
        hovertext=[f"<b>{object_name(o)}</b><br>position x {o.position[0]:.2f}, y {o.position[1]:.2f}, "
                   f"z {o.position[2]:.2f} m<br>size w {o.size[0]:.2f}, h {o.size[1]:.2f}, "
                   f"d {o.size[2]:.2f} m" for o in placed],
        hoverinfo="text")


def scene_figure(graph: SceneGraph) -> go.Figure:
    """The 3D view of a 3DSG: objects (markers and bounding-box wireframes), relation lines with
    their predicates, the ground plane and the camera frustum. Objects without position and size
    are left out and counted in the title."""
    placed = [o for o in graph.objects if o.position is not None and o.size is not None]
    left_out = len(graph.objects) - len(placed)
    title = f"{len(placed)} objects placed in 3D" + (f", {left_out} without position/size" if left_out else "")
    figure = go.Figure(layout={
        "title": {"text": title, "font": {"size": 13}}, "height": 480,
        "margin": {"l": 0, "r": 0, "t": 36, "b": 0}, "legend": {"orientation": "h", "y": 0},
        "scene": {"xaxis": {"title": {"text": "x right (m)"}}, "yaxis": {"title": {"text": "z depth (m)"}},
                  "zaxis": {"title": {"text": "y up (m)"}}}})
    if not placed:
        figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="white",
                             annotations=[{"text": "Nothing to place in 3D: no object has a position and "
                                           "size yet (lift the graph to 3D)", "showarrow": False}])
        return figure
    at = {o.id: np.asarray(o.position) for o in placed}
    edges = _polylines([e for o in placed for e in _box_edges(o)])
    figure.add_traces(_ground_and_frustum(placed) + [
        go.Scatter3d(**_plot_xyz(edges), mode="lines", name="bounding boxes", hoverinfo="skip",
                     line={"color": "rgba(40, 40, 40, 0.35)", "width": 1})]
        + _relation_traces(graph, at) + [_object_trace(placed)])
    figure.update_layout(scene=_view_of(figure, np.mean(list(at.values()), axis=0)))
    return figure


def _view_of(figure: go.Figure, focus: np.ndarray) -> dict:
    """Scene axes spanning every drawn point at true scale, and a viewpoint above and behind the
    camera looking at ``focus`` (a camera-frame point, metres). Plotly's camera centre and eye are
    in the scene box's own units: each axis spans -aspectratio/2..aspectratio/2."""
    points = np.concatenate([np.stack([np.asarray(getattr(t, a), float) for a in "xyz"], 1) for t in figure.data])
    points = points[~np.isnan(points).any(1)]
    lo, hi = points.min(0), points.max(0)
    span = np.maximum(hi - lo, 1e-6)
    ratio = span / span.max()
    centre = (focus[[0, 2, 1]] - (lo + hi) / 2) / span * ratio  # camera frame -> plot axes, box units
    return {"aspectmode": "manual", "aspectratio": dict(zip("xyz", ratio)),
            **{f"{a}axis": {"range": [lo[i], hi[i]]} for i, a in enumerate("xyz")},
            "camera": {"center": dict(zip("xyz", centre)), "eye": dict(zip("xyz", centre + VIEW_OFFSET)),
                       "up": {"x": 0, "y": 0, "z": 1}}}


def graph_figure(graph: SceneGraph) -> go.Figure:
    """The graph as a 2D node-link figure (networkx spring layout, seeded): nodes coloured like
    their objects, one arrow per related pair and direction, predicates at the arrows' middles."""
    g = graph.to_networkx()
    figure = go.Figure(layout={
        "title": {"text": f"{graph.kind}: {len(graph.objects)} objects, {len(graph.relations)} relations",
                  "font": {"size": 13}}, "height": 420, "showlegend": False,
        "margin": {"l": 10, "r": 10, "t": 36, "b": 10},
        "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"},
        "plot_bgcolor": "white"})
    if not graph.objects:
        return figure
    layout = nx.spring_layout(g, seed=0) if len(g) > 1 else {n: np.zeros(2) for n in g}
    for s, o, data in g.edges(data=True):
        bend = 0.06 if g.has_edge(o, s) else 0.0  # two directions of a pair drawn side by side
        a, b = layout[s], layout[o]
        normal = np.array([a[1] - b[1], b[0] - a[0]]) * bend / max(np.linalg.norm(b - a), 1e-9)
        a, b = a + normal, b + normal
        figure.add_annotation(x=b[0], y=b[1], ax=a[0], ay=a[1], xref="x", yref="y", axref="x", ayref="y",
                              showarrow=True, arrowhead=2, arrowwidth=1.5, arrowcolor=EDGE_COLOUR,
                              standoff=14, startstandoff=14)
        figure.add_annotation(x=(a[0] + b[0]) / 2, y=(a[1] + b[1]) / 2, showarrow=False,
                              text=" / ".join(r["predicate"] for r in data["relations"]),
                              font={"size": 10, "color": "rgb(70, 70, 70)"}, bgcolor="rgba(255,255,255,0.7)")
    objects = list(graph.objects)
    figure.add_trace(go.Scatter(
        x=[layout[o.id][0] for o in objects], y=[layout[o.id][1] for o in objects],
        mode="markers+text", text=[object_name(o) for o in objects], textposition="bottom center",
        marker={"size": 22, "color": [object_colour(o) for o in objects], "line": {"color": "black", "width": 1}},
        hoverinfo="text"))
    return figure


def box_annotations(image: np.ndarray, graph: SceneGraph) -> tuple[np.ndarray, list[tuple[tuple[int, ...], str]]]:
    """``gr.AnnotatedImage`` value: the (H, W, 3) uint8 image and, per object with a box, its box
    in pixels ``(x0, y0, x1, y1)`` and its name."""
    h, w = image.shape[:2]
    boxes = [(tuple(int(round(v * s)) for v, s in zip(o.box, (w, h, w, h))), object_name(o))
             for o in graph.objects if o.box is not None]
    return image, boxes


def token_grid_image(image: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 image a (g, g) VQ token map decodes to, enlarged to g * TOKEN_CELL_PX
    pixels a side, with the grid drawn over it and each cell's token id in its corner: which code
    the image diffusion chose where."""
    g = tokens.shape[0]
    side = g * TOKEN_CELL_PX
    picture = Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture, "RGBA")
    font = ImageFont.load_default(size=TOKEN_CELL_PX // 4)
    for k in range(1, g):
        draw.line([(k * TOKEN_CELL_PX, 0), (k * TOKEN_CELL_PX, side)], fill=(0, 0, 0, 120))
        draw.line([(0, k * TOKEN_CELL_PX), (side, k * TOKEN_CELL_PX)], fill=(0, 0, 0, 120))
    for row in range(g):
        for col in range(g):
            at = (col * TOKEN_CELL_PX + 2, row * TOKEN_CELL_PX + 2)
            text = str(int(tokens[row, col]))
            draw.rectangle(draw.textbbox(at, text, font=font), fill=(255, 255, 255, 170))
            draw.text(at, text, fill=(0, 0, 0, 255), font=font)
    return np.asarray(picture)
