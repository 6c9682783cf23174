"""Every arrow of the data flow, alone and end to end, with the shipped models on this machine:
latency at batch 1, the best throughput over batch sizes, peak memory, each against a named
baseline measured in the same run; then the roofline: FLOPs per item of each model arrow against
this machine's measured matmul peak.

Run: .venv/bin/python bench/arrows.py [--repeats 10] [--batches 1 4 16 64]

Inputs are the first test-split world scenes (``world.build.make_example``; nothing read from
disk): their first captions, TSGs, renders; 3DSGs lifted from the TSGs. Rows:

- parse: ``Engine.parse`` (spaCy + rules); throughput through ``parse_texts`` (``nlp.pipe``).
- detect: ``Engine.detect`` on 128 x 128 renders.
- lift: the graph diffusion on a TSG, default steps; baseline: full sampling (100 steps, the
  number VQ-Diffusion trains with).
- image diffusion: ``Engine.generate_image_tokens`` (CLIP text + DGAE features, default guidance, 2
  forwards a step), default steps; baseline: 100 steps.
- VQ decode: ``Engine.detokenize``; baseline for throughput: the same images decoded one by one.
- caption: ``Engine.generate_captions`` (VQ encode + text diffusion), default steps; baseline: 100.
- end to end: text -> 4 images (``text_to_image``, one batch) against 4 calls of one image and
  against one CPU thread (``torch.set_num_threads(1)``; the default is one per core); image -> 1
  caption (``image_to_text``) against one thread.

"ratio" is baseline time / this time (how many times faster than the baseline; > 1 is faster).
Memory: the process's peak resident memory during one batch-1 run, outside the timed runs (models
loaded: it is what a deployment needs), or CUDA's allocator peak on a GPU.
Roofline: FLOPs counted by ``torch.utils.flop_counter`` (matmuls, convolutions, attention; the
elementwise rest is not counted) per item at the best batch, over the measured time per item,
as a fraction of the fp32 matmul peak measured here (square matmuls of side 1024, all threads).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from timing import SENTENCE, p95, peak_memory, repeat_times  # noqa: E402

from sd3core.graph import SceneGraph  # noqa: E402
from sd3core.models.graph_diffusion import lift  # noqa: E402
from sd3core.pipeline import Engine  # noqa: E402
from sd3core.textparse import parse_texts  # noqa: E402
from sd3core.train import STAGES  # noqa: E402
from sd3core.world.build import make_example, scene_seed  # noqa: E402

FULL_STEPS = 100  # the "full sampling" baseline of every diffusion


@dataclass
class Arrow:
    """One arrow: ``run(batch)`` runs it on the first ``batch`` inputs; ``baseline(batch)`` is what
    it is compared with (``baseline_name``) at batch 1, or across the batch sizes when
    ``baseline_batches`` (a one-by-one baseline); ``flops`` is whether the roofline counts it."""
    name: str
    run: object
    baseline_name: str
    baseline: object
    baseline_batches: bool = False
    flops: bool = True


def matmul_peak_gflops(side: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 GFLOP/s of a (side x side) @ (side x side) matmul on the CPU, all threads."""
    a, b = torch.randn(side, side), torch.randn(side, side)
    best = min(repeat_times(lambda: a @ b, repeats))
    return 2 * side**3 / best / 1e9


def count_flops(fn) -> int:
    """Matmul/convolution/attention FLOPs of one call of ``fn``. The transformers' fused inference
    path (one aten op per layer) would hide its matmuls from the counter, so it is off while counting."""
    fused = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fused)
    return counter.get_total_flops()


def arrows(engine: Engine, n: int) -> list[Arrow]:
    """The arrows over the first ``n`` test scenes."""
    examples = [make_example(scene_seed("test", i)) for i in range(n)]
    texts = [e["record"]["captions"][0]["text"] for e in examples]
    tsgs = [SceneGraph.from_dict(e["record"]["captions"][0]["tsg"]) for e in examples]
    images = [e["rgb"] for e in examples]
    graphs3d = lift(engine.model("graph_diffusion"), tsgs, 16, torch.Generator().manual_seed(0))
    tokens = engine.generate_image_tokens(graphs3d[:1], texts[:1])

    def lift_batch(b, steps=None):
        return lift(engine.model("graph_diffusion"), tsgs[:b], steps or 16, torch.Generator().manual_seed(0))

    def decode_one_by_one(b):
        return [engine.detokenize(tokens[:1]) for _ in range(b)]

    return [
        Arrow("parse", lambda b: parse_texts(texts[:b]), "one by one (Engine.parse)",
              lambda b: [engine.parse(t) for t in texts[:b]], baseline_batches=True, flops=False),
        Arrow("detect", lambda b: engine.detect(images[:b]), "one by one",
              lambda b: [engine.detect(images[i:i + 1]) for i in range(b)], baseline_batches=True),
        Arrow("lift (graph diffusion)", lift_batch, f"{FULL_STEPS} steps", lambda b: lift_batch(b, FULL_STEPS)),
        Arrow("image diffusion", lambda b: engine.generate_image_tokens(graphs3d[:b], texts[:b]),
              f"{FULL_STEPS} steps", lambda b: engine.generate_image_tokens(graphs3d[:b], texts[:b], FULL_STEPS)),
        Arrow("VQ decode", lambda b: engine.detokenize(tokens.repeat(b, 1, 1)), "one by one", decode_one_by_one,
              baseline_batches=True),
        Arrow("caption (VQ encode + text diffusion)", lambda b: engine.generate_captions(graphs3d[:b], images[:b]),
              f"{FULL_STEPS} steps", lambda b: engine.generate_captions(graphs3d[:b], images[:b], FULL_STEPS)),
    ]


def throughput(fn, batches: list[int], repeats: int) -> dict[int, float]:
    """Items per second of ``fn(batch)`` for each batch size (median of ``repeats`` runs)."""
    return {b: b / statistics.median(repeat_times(lambda: fn(b), repeats)) for b in batches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per batch-1 figure")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    args = parser.parse_args()
    engine = Engine()
    for stage in STAGES:
        engine.model(stage)  # loaded before any clock starts
    peak = matmul_peak_gflops()
    print(f"torch {torch.__version__}, device {engine.device}, {torch.get_num_threads()} threads; "
          f"measured fp32 matmul peak {peak:.1f} GFLOP/s\n")
    print("| arrow | batch 1 median ms | p95 ms | best items/s (batch) | peak memory MB | baseline | ratio |")
    print("|---|---|---|---|---|---|---|")
    roofline = []
    repeats_big = max(2, args.repeats // 4)
    for arrow in arrows(engine, max(args.batches)):
        times = repeat_times(lambda: arrow.run(1), args.repeats)
        with peak_memory(engine.device) as memory:  # apart from the timed runs: sampling costs time
            arrow.run(1)
        rates = throughput(arrow.run, args.batches, repeats_big)
        best = max(rates, key=rates.get)
        if arrow.baseline_batches:
            base_rates = throughput(arrow.baseline, args.batches, repeats_big)
            ratio = rates[best] / max(base_rates.values())
        else:
            ratio = statistics.median(repeat_times(lambda: arrow.baseline(1), repeats_big)) / statistics.median(times)
        print(f"| {arrow.name} | {1000 * statistics.median(times):.1f} | {1000 * p95(times):.1f} | "
              f"{rates[best]:.1f} ({best}) | {memory['peak_mb']:.0f} | {arrow.baseline_name} | {ratio:.2f} |",
              flush=True)
        if arrow.flops:
            per_item = count_flops(lambda: arrow.run(best)) / best
            roofline.append((arrow.name, per_item, per_item * rates[best] / 1e9))
    end_to_end(engine, args.repeats)
    print("\n| roofline | GFLOPs per item | achieved GFLOP/s at best batch | fraction of matmul peak |")
    print("|---|---|---|---|")
    for name, flops, achieved in roofline:
        print(f"| {name} | {flops / 1e9:.3f} | {achieved:.2f} | {achieved / peak:.3f} |")


def end_to_end(engine: Engine, repeats: int) -> None:
    """The two products at the studio's defaults, each against a baseline: text -> 4 images in one
    batch against 4 one-image calls, and against 1 CPU thread; image -> caption against 1 thread."""
    text = SENTENCE
    image = make_example(scene_seed("test", 0))["rgb"]
    four = repeat_times(lambda: engine.text_to_image(text, 4), repeats)
    caption = repeat_times(lambda: engine.image_to_text(image, 1), repeats)
    singles = repeat_times(lambda: [engine.text_to_image(text, 1, seed=s) for s in range(4)], max(2, repeats // 2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    four_1, caption_1 = (repeat_times(fn, max(2, repeats // 2)) for fn in (
        lambda: engine.text_to_image(text, 4), lambda: engine.image_to_text(image, 1)))
    torch.set_num_threads(threads)
    print("\n| end to end, default settings | median ms | p95 ms | baseline | ratio |\n|---|---|---|---|---|")
    for name, times, baselines in (
            ("text -> 4 images (one batch)", four, (("4 x text -> 1 image", singles), ("1 thread", four_1))),
            ("image -> 1 caption", caption, (("1 thread", caption_1),))):
        for k, (base_name, base) in enumerate(baselines):
            shown = (f"{1000 * statistics.median(times):.1f} | {1000 * p95(times):.1f}" if k == 0 else " | ")
            print(f"| {name if k == 0 else ''} | {shown} | {base_name} | "
                  f"{statistics.median(base) / statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
