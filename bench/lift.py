"""Latency of lifting a 6-object graph to a 3DSG with the shipped graph diffusion, on this machine.

Run: .venv/bin/python bench/lift.py [--repeats 30]. Prints a markdown table: median and p95 latency
of ``Engine.lift_to_3d`` for one 3DSG at several step counts (the default marked), and 4 samples
drawn in one batch against 4 drawn one by one. The aim from the 3DSG-diffusion issue is one 3DSG of a
6-object graph in under 0.3 s on this CPU at the default steps.
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

import torch  # noqa: E402
from timing import latency_row, repeat_times  # noqa: E402

from sd3core.graph import SceneGraph  # noqa: E402
from sd3core.models.graph_diffusion import DEFAULT_STEPS  # noqa: E402
from sd3core.pipeline import Engine  # noqa: E402

GRAPH = SceneGraph.from_dict({
    "kind": "tsg",
    "objects": [{"id": 0, "label": "cube", "attributes": ["red", "large"]},
                {"id": 1, "label": "sphere", "attributes": ["blue"]},
                {"id": 2, "label": "cone", "attributes": ["yellow", "small"]},
                {"id": 3, "label": "bucket", "attributes": ["green"]},
                {"id": 4, "label": "cylinder", "attributes": ["white", "shiny"]},
                {"id": 5, "label": "pyramid", "attributes": ["purple"]}],
    "relations": [{"subject": 0, "predicate": "to the left of", "object": 1},
                  {"subject": 2, "predicate": "on", "object": 0},
                  {"subject": 4, "predicate": "behind", "object": 3},
                  {"subject": 5, "predicate": "in front of", "object": 1}]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    engine = Engine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {engine.device}\n")
    print("| lift a 6-object TSG | median ms | p95 ms |\n|---|---|---|")
    for steps in (4, 8, DEFAULT_STEPS, 32):
        mark = " (default)" if steps == DEFAULT_STEPS else ""
        print(latency_row(f"1 sample, {steps} steps{mark}",
                   repeat_times(lambda: engine.lift_to_3d(GRAPH, steps=steps), args.repeats)))
    batched = repeat_times(lambda: engine.lift_to_3d_samples(GRAPH, 4), args.repeats)
    single = repeat_times(lambda: [engine.lift_to_3d(GRAPH, seed=s) for s in range(4)], args.repeats)
    print(latency_row("4 samples in one batch", batched))
    print(latency_row("4 samples one by one", single))
    print(f"\nbatched / one by one: {statistics.median(batched) / statistics.median(single):.2f}")


if __name__ == "__main__":
    main()
