"""Caption quality against sampling steps and the candidates of each round: how the image -> caption
arrow's defaults (``text_diffusion.DEFAULT_STEPS``, ``pipeline.CAPTION_CANDIDATES``) are chosen.

Run: .venv/bin/python bench/caption_candidates.py [--limit 200] [--settings 8x8 8x8+8 8x8+4]
Prints a markdown table: for each setting STEPSxCANDIDATES[+CANDIDATES...] (captions drawn in the
first round, then in each later round for the captions not yet settled), SI2T on the first ``--limit`` test
scenes (``text_diffusion.evaluate``, full row, same seeds for every row): relation correctness,
relations per caption, CIDEr; and the latency of image -> one caption at that setting (detect, lift,
draw the candidates, parse and verify; median and p95 over ``--repeats`` calls, each on the next of
the first 20 test renders so that extra rounds count; shipped models, this machine).
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

from timing import RENDERS, p95, render_cycle, repeat_times  # noqa: E402

from sd3core.models import text_diffusion  # noqa: E402
from sd3core.pipeline import CAPTION_CANDIDATES, Engine  # noqa: E402


def setting(text: str) -> tuple[int, tuple[int, ...]]:
    """'8x8+4' -> (8 steps, (8 candidates, then 4 in a second round))."""
    steps, _, rounds = text.partition("x")
    parts = [steps, *rounds.split("+")]
    if not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"setting: got {text!r}, expected STEPSxCANDIDATES[+CANDIDATES...] such as 8x8+4")
    return int(steps), tuple(map(int, parts[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/world")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=200, help="scenes scored per setting")
    parser.add_argument("--settings", type=setting, nargs="+", default=[(8, (8,)), (8, (8, 8)), (8, (8, 4))])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per setting")
    args = parser.parse_args()
    engine = Engine()
    default = (text_diffusion.DEFAULT_STEPS, CAPTION_CANDIDATES)
    print(f"{args.limit} {args.split} scenes per row (same seeds); latency of image -> one caption over the "
          f"first {RENDERS} {args.split} renders\n")
    print("| steps × candidates per round | rel. correct | relations / caption | CIDEr | median ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for steps, candidates in args.settings:
        si2t = text_diffusion.evaluate(engine.model("text_diffusion"), args.data, args.split, args.limit, steps,
                                       engine=engine, candidates=candidates)
        renders = render_cycle(args.split)

        def caption() -> list[str]:
            image = next(renders)
            graph3d = engine.lift_to_3d(engine.detect([image])[0].graph)
            return engine.generate_captions([graph3d], [image], steps, 0, True, candidates)
        times = repeat_times(caption, args.repeats)
        mark = " (default)" if (steps, candidates) == default else ""
        print(f"| {steps} × {'+'.join(map(str, candidates))}{mark} | {si2t['full_relation_correct']:.3f} | "
              f"{si2t['full_relations_per_caption']:.2f} | {si2t['full_cider']:.3f} | "
              f"{1000 * statistics.median(times):.0f} | {1000 * p95(times):.0f} |", flush=True)


if __name__ == "__main__":
    main()
