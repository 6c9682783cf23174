"""Caption quality against sampling steps and candidates: how the image -> caption arrow's defaults
(``text_diffusion.DEFAULT_STEPS``, ``pipeline.CAPTION_CANDIDATES``) are chosen.

Run: .venv/bin/python bench/caption_candidates.py [--limit 200] [--settings 16x4 8x4 8x6 8x8]
Prints a markdown table: for each setting STEPSxCANDIDATES, SI2T on the first ``--limit`` test
scenes (``text_diffusion.evaluate``, full row, same seeds for every row): relation correctness,
relations per caption, CIDEr; and the latency of image -> one caption at that setting (detect, lift,
draw the candidates, parse and verify; median and p95 of ``--repeats``, shipped models, this machine).
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

from timing import p95, repeat_times  # noqa: E402

from sd3core.models import text_diffusion  # noqa: E402
from sd3core.pipeline import CAPTION_CANDIDATES, Engine  # noqa: E402
from sd3core.world.build import make_example, scene_seed  # noqa: E402


def setting(text: str) -> tuple[int, int]:
    """'8x6' -> (8 steps, 6 candidates)."""
    steps, _, candidates = text.partition("x")
    if not (steps.isdigit() and candidates.isdigit()):
        raise argparse.ArgumentTypeError(f"setting: got {text!r}, expected STEPSxCANDIDATES such as 8x6")
    return int(steps), int(candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/world")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=200, help="scenes scored per setting")
    parser.add_argument("--settings", type=setting, nargs="+", default=[(16, 4), (8, 4), (8, 6), (8, 8)])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per setting")
    args = parser.parse_args()
    engine = Engine()
    image = make_example(scene_seed(args.split, 0))["rgb"]
    default = (text_diffusion.DEFAULT_STEPS, CAPTION_CANDIDATES)
    print(f"{args.limit} {args.split} scenes per row (same seeds); latency of image -> one caption on scene 0\n")
    print("| steps × candidates | rel. correct | relations / caption | CIDEr | median ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for steps, candidates in args.settings:
        si2t = text_diffusion.evaluate(engine.model("text_diffusion"), args.data, args.split, args.limit, steps,
                                       engine=engine, candidates=candidates)

        def caption() -> list[str]:
            graph3d = engine.lift_to_3d(engine.detect([image])[0].graph)
            return engine.generate_captions([graph3d], [image], steps, 0, True, candidates)
        times = repeat_times(caption, args.repeats)
        mark = " (default)" if (steps, candidates) == default else ""
        print(f"| {steps} × {candidates}{mark} | {si2t['full_relation_correct']:.3f} | "
              f"{si2t['full_relations_per_caption']:.2f} | {si2t['full_cider']:.3f} | "
              f"{1000 * statistics.median(times):.0f} | {1000 * p95(times):.0f} |", flush=True)


if __name__ == "__main__":
    main()
