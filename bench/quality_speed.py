"""Quality against diffusion steps: how many sampling steps the image and text diffusions need.

Run: .venv/bin/python bench/quality_speed.py [--limit 200] [--steps 100 32 16 8 4]
Prints a markdown table: for each step count, ST2I spatial accuracy and object recall
(``image_diffusion.evaluate``, full row) and SI2T relation correctness and CIDEr
(``text_diffusion.evaluate``, full row) on the first ``--limit`` test scenes, same seeds for every
row, with the latency of one image and one caption at that step count (median of ``--repeats``,
shipped models, this machine, the Engine's default precision) as a ratio to each model's default
steps (``image_diffusion.DEFAULT_STEPS``, ``text_diffusion.DEFAULT_STEPS``). The studio's default
steps are chosen from this table (README, "Performance").
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

from timing import SENTENCE as TEXT, repeat_times  # noqa: E402

from sd3core.models import image_diffusion, text_diffusion  # noqa: E402
from sd3core.pipeline import Engine  # noqa: E402
from sd3core.world.build import make_example, scene_seed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/world")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=200, help="scenes scored per step count")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 32, 16, 8, 4])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per step count")
    args = parser.parse_args()
    engine = Engine()
    graph3d = engine.text_to_image(TEXT, 1)["graph3d"]
    image = make_example(scene_seed(args.split, 0))["rgb"]
    image_default, text_default = image_diffusion.DEFAULT_STEPS, text_diffusion.DEFAULT_STEPS
    base_image = statistics.median(repeat_times(lambda: engine.generate_image(graph3d, TEXT, steps=image_default),
                                                args.repeats))
    base_text = statistics.median(repeat_times(lambda: engine.generate_caption(graph3d, image, steps=text_default),
                                               args.repeats))
    print(f"{args.limit} {args.split} scenes per row (same seeds); latency of one image / one caption as a "
          f"ratio to the defaults, {image_default} / {text_default} steps ({1000 * base_image:.0f} ms / "
          f"{1000 * base_text:.0f} ms here, {str(engine.precision).removeprefix('torch.')})\n")
    print("| steps | spatial acc. | object recall | rel. correct | CIDEr | image latency | caption latency |")
    print("|---|---|---|---|---|---|---|")
    for steps in args.steps:
        st2i = image_diffusion.evaluate(engine.model("image_diffusion"), args.data, args.split, args.limit, steps,
                                        engine=engine, ablations=False)
        si2t = text_diffusion.evaluate(engine.model("text_diffusion"), args.data, args.split, args.limit, steps,
                                       engine=engine)
        image_s = statistics.median(repeat_times(lambda: engine.generate_image(graph3d, TEXT, steps=steps), args.repeats))
        text_s = statistics.median(repeat_times(lambda: engine.generate_caption(graph3d, image, steps=steps), args.repeats))
        mark = "".join(f" ({name} default)" for name, d in (("image", image_default), ("caption", text_default))
                       if steps == d)
        print(f"| {steps}{mark} | {st2i['full_spatial_acc']:.3f} | {st2i['full_object_recall']:.3f} | "
              f"{si2t['full_relation_correct']:.3f} | {si2t['full_cider']:.3f} | {image_s / base_image:.2f} | "
              f"{text_s / base_text:.2f} |", flush=True)


if __name__ == "__main__":
    main()
