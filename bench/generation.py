"""Latency of ST2I and SI2T end to end with the shipped models, on this machine.

Run: .venv/bin/python bench/generation.py [--repeats 10]. Prints markdown tables: median and p95
latency of ``Engine.text_to_image`` (parse, lift, the image diffusion's candidates, their VQ decode
and the verifier's reading, the repair rounds where it misses an object, the kept images' decode)
for 1 and 4 images, each call on the next of the first 20 test captions (at least 20 calls), and
of ``Engine.image_to_text`` (detect, lift, VQ encode, text diffusion, verify) for one caption,
each call on the next of the first 20 test renders (at least 20 calls; a render whose first
candidates fail gets a second round), at the default settings, with the models computing in float32
and in bfloat16 (``pipeline.pick_precision``: the default on CUDA and on CPUs with native bfloat16);
and one image from a 3DSG (``generate_image``) at several step counts and candidates, as ratios to
the default, in the default precision.
Aims from the ST2I/SI2T issue: text -> one image <= 1.5 s, image -> one caption <= 1.0 s.
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

import torch  # noqa: E402
from timing import RENDERS, SENTENCE as TEXT, caption_cycle, latency_row, render_cycle, repeat_times  # noqa: E402

from sd3core.models.image_diffusion import DEFAULT_STEPS  # noqa: E402
from sd3core.pipeline import IMAGE_CANDIDATES, IMAGE_REPAIRS, Engine, pick_device, pick_precision  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    default = pick_precision(pick_device())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {pick_device()}, "
          f"default precision {str(default).removeprefix('torch.')}\n")
    print("| end to end, default settings | precision | median ms | p95 ms |\n|---|---|---|---|")
    for precision in (torch.float32, torch.bfloat16):
        engine, renders, name = Engine(precision=precision), render_cycle("test"), str(precision).removeprefix('torch.')
        texts = caption_cycle("test")
        name += " (default)" if precision == default else ""
        calls = max(args.repeats, RENDERS)
        print(latency_row(f"text -> 1 image ({RENDERS} captions in turn) | {name}",
                          repeat_times(lambda: engine.text_to_image(next(texts), 1), calls)))
        print(latency_row(f"text -> 4 images (one batch) | {name}",
                          repeat_times(lambda: engine.text_to_image(next(texts), 4), calls)))
        print(latency_row(f"image -> 1 caption ({RENDERS} renders in turn) | {name}",
                          repeat_times(lambda: engine.image_to_text(next(renders), 1), max(args.repeats, RENDERS))))
    engine = Engine()
    graph3d = engine.text_to_image(TEXT, 1)["graph3d"]
    print("\n| one image from a 3DSG | median ms | p95 ms | vs default |\n|---|---|---|---|")
    base = None
    for steps, k, r in ((DEFAULT_STEPS, IMAGE_CANDIDATES, IMAGE_REPAIRS), (DEFAULT_STEPS, IMAGE_CANDIDATES, 0),
                        (DEFAULT_STEPS, 1, 0), (16, 1, 0)):
        times = repeat_times(lambda: engine.generate_images([graph3d], [TEXT], steps, candidates=k, repairs=r),
                             args.repeats)
        base = base or statistics.median(times)
        default = " (default)" if (steps, k, r) == (DEFAULT_STEPS, IMAGE_CANDIDATES, IMAGE_REPAIRS) else ""
        print(latency_row(f"{steps} steps, best of {k}, {r} repair rounds{default}", times)
              + f" {statistics.median(times) / base:.2f} |")


if __name__ == "__main__":
    main()
