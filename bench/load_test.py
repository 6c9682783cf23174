"""Load test of the studio: N concurrent gradio_client clients each issue generate requests
(``/generate_images``) against a studio launched here on loopback (or at ``--url``); every request
must be answered without error. Prints latency percentiles (seconds) and exits 1 on any error.

    python bench/load_test.py                      # 20 clients, shipped checkpoints
    python bench/load_test.py --checkpoints DIR --steps 2
"""
from __future__ import annotations

import argparse
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCE = "a red cube to the left of a blue sphere"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(checkpoints: str | None) -> tuple[str, object]:
    """Launch the studio on a free loopback port; returns (url, Blocks)."""
    from demo.hosting import launch
    from demo.studio import build_studio
    from sd3core.pipeline import Engine
    studio = build_studio(Engine(checkpoints) if checkpoints else Engine())
    port = free_port()
    launch(studio, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/", studio


def one_client(url: str, tables: tuple, args: argparse.Namespace) -> list[tuple[float, str | None]]:
    """One client's requests: (latency in seconds, error message or None) each."""
    from gradio_client import Client
    client = Client(url, verbose=False, analytics_enabled=False)
    results = []
    for k in range(args.requests):
        start = time.perf_counter()
        try:
            gallery, *_ = client.predict(*tables, args.samples, args.steps, args.guidance, k,
                                           api_name="/generate_images")
            error = None if len(gallery) == args.samples else f"got {len(gallery)} images"
        except Exception as exc:  # a failed request is counted, the others go on
            error = f"{type(exc).__name__}: {exc}"
        results.append((time.perf_counter() - start, error))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running studio (default: launch one here on loopback)")
    parser.add_argument("--checkpoints", help="checkpoint directory (default: the shipped ones)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=1, help="generate requests per client")
    parser.add_argument("--samples", type=int, default=1, help="images per request")
    parser.add_argument("--steps", type=int, default=16, help="diffusion steps per request")
    parser.add_argument("--guidance", type=float, default=3.0)
    args = parser.parse_args()

    from gradio_client import Client
    url, studio = (args.url, None) if args.url else start_studio(args.checkpoints)
    setup = Client(url, verbose=False, analytics_enabled=False)
    objects, relations, _ = setup.predict(SENTENCE, api_name="/parse")
    _, objects3d, relations3d, _ = setup.predict(objects, relations, args.steps, 0, api_name="/lift_tsg")

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        runs = list(pool.map(lambda _: one_client(url, (objects3d, relations3d), args), range(args.clients)))
    wall = time.perf_counter() - start
    if studio is not None:
        studio.close()

    results = [r for run in runs for r in run]
    latencies = np.array([t for t, _ in results])
    errors = [e for _, e in results if e]
    print(f"{len(results)} generate requests from {args.clients} clients ({args.samples} image(s), "
          f"{args.steps} steps each) in {wall:.1f} s: {len(results) - len(errors)} answered, "
          f"{len(errors)} errors")
    print(f"latency s: p50 {np.percentile(latencies, 50):.2f}, p95 {np.percentile(latencies, 95):.2f}, "
          f"max {latencies.max():.2f}")
    for e in sorted(set(errors)):
        print(f"error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
