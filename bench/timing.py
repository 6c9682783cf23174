"""What every bench measures with: the sentence the end-to-end benches draw from, the captions and
renders the text and image benches go through, wall-clock repeats, percentiles, peak memory, markdown rows."""
from __future__ import annotations

import os
import statistics
import threading
import time
from contextlib import contextmanager

import torch

SENTENCE = "A small red cube is to the left of a blue sphere, and a green cone is behind the cube."
RENDERS = 20   # world renders an image -> caption bench goes through in turn


def render_cycle(split: str = "test"):
    """An endless iterator over the first ``RENDERS`` world renders of ``split``, (H, W, 3) uint8:
    timing image -> caption over several images counts the ones that need a second round."""
    import itertools

    from sd3core.world.build import make_example, scene_seed
    return itertools.cycle([make_example(scene_seed(split, i))["rgb"] for i in range(RENDERS)])


def caption_cycle(split: str = "test"):
    """An endless iterator over the first captions of the first ``RENDERS`` world scenes of
    ``split``: timing text -> image over several sentences counts the ones whose objects the
    verifier misses and has redrawn."""
    import itertools

    from sd3core.world.build import make_example, scene_seed
    return itertools.cycle([make_example(scene_seed(split, i))["record"]["captions"][0]["text"]
                            for i in range(RENDERS)])


def repeat_times(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def p95(times: list[float]) -> float:
    """The 95th percentile by rank (the largest of fewer than 20 runs' top 5 %)."""
    return sorted(times)[max(0, round(0.95 * len(times)) - 1)]


def latency_row(name: str, times: list[float]) -> str:
    """``| name | median ms | p95 ms |``."""
    return f"| {name} | {1000 * statistics.median(times):.1f} | {1000 * p95(times):.1f} |"


def _rss_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_memory(device: torch.device):
    """Yields a dict whose ``"peak_mb"`` is, on leaving, the peak memory while inside: CUDA's
    allocator peak on a GPU, else the process's resident memory sampled every millisecond."""
    out = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield out
        out["peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        return
    peak, done = [_rss_bytes()], threading.Event()

    def sample():
        while not done.wait(0.001):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        done.set()
        sampler.join()
        out["peak_mb"] = max(peak[0], _rss_bytes()) / 2**20
