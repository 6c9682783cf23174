"""Throughput of building the synthetic world: scenes/s at 128x128, one process vs the default pool.

Run: .venv/bin/python bench/world.py [--n 400]. Prints a table; the ratio is the speed-up of the pool.
The aim from the Foundation issue is >= 100 scenes/s with 2 workers on the 2-core machine.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

from sd3core.world.build import build_split, make_example  # noqa: E402
from sd3core.world.render import render  # noqa: E402
from sd3core.world.sample import sample_scene  # noqa: E402


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=400, help="scenes per measurement")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    scenes = [sample_scene(s) for s in range(args.n)]
    rows = {
        "sample only (1 process)": _rate(lambda n: [sample_scene(s) for s in range(n)], args.n),
        "render only (1 process)": _rate(lambda n: [render(s, size=args.size) for s in scenes], args.n),
        "full example (1 process)": _rate(lambda n: [make_example(s, args.size) for s in range(n)], args.n),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            rows[f"build_split, {workers} worker(s)"] = _rate(
                lambda n: build_split("train", n, tmp, size=args.size, workers=workers, progress=False),
                args.n)
    print(f"| world build, {args.size}x{args.size}, n={args.n} | scenes/s |")
    print("|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:.1f} |")
    print(f"\npool speed-up (2 workers / 1 worker): "
          f"{rows['build_split, 2 worker(s)'] / rows['build_split, 1 worker(s)']:.2f}x")


if __name__ == "__main__":
    main()
