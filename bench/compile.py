"""Does ``torch.compile`` pay off on this CPU? The image diffusion (the slowest arrow) drawing 4
images at the studio's defaults, eager against compiled (inductor), same seeds.

Run: .venv/bin/python bench/compile.py [--repeats 10]
Prints the first call of each (the compiled one includes compiling), the steady median and p95, and
their ratio. The studio stays eager unless this shows a clear gain (README, "Performance").
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

import torch  # noqa: E402
from timing import SENTENCE as TEXT, p95, repeat_times  # noqa: E402

from sd3core.pipeline import Engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    engine = Engine()
    graph3d = engine.text_to_image(TEXT, 1)["graph3d"]
    eager = engine.model("image_diffusion")
    rows = {}
    for name, model in (("eager", eager), ("torch.compile (inductor)", torch.compile(eager))):
        engine.set_model("image_diffusion", model)
        start = time.perf_counter()
        first = engine.generate_image_tokens([graph3d] * 4, [TEXT] * 4)
        rows[name] = (time.perf_counter() - start, repeat_times(
            lambda: engine.generate_image_tokens([graph3d] * 4, [TEXT] * 4), args.repeats), first)
    (_, eager_times, eager_tokens), (_, compiled_times, compiled_tokens) = rows.values()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {engine.device}; "
          "image diffusion, 4 images, default steps\n")
    print("| model | first call s | median ms | p95 ms | eager / this |\n|---|---|---|---|---|")
    for name, (first, times, _) in rows.items():
        print(f"| {name} | {first:.1f} | {1000 * statistics.median(times):.1f} | {1000 * p95(times):.1f} | "
              f"{statistics.median(eager_times) / statistics.median(times):.2f} |")
    same = (eager_tokens == compiled_tokens).float().mean().item()
    print(f"\ntokens equal to eager's, same seed: {same:.3f} of them")


if __name__ == "__main__":
    main()
