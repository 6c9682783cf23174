"""ST2I quality against the image sampling settings: guidance, steps, truncation, candidates, repairs.

Run: .venv/bin/python bench/image_sampling.py [--split val] [--limit 500]
         [--guidance 3 4 6 8] [--steps 12 24 32] [--truncation 0.8 1] [--candidates 1 16] [--repairs 0 3]
One setting at a time: the defaults (``image_diffusion.DEFAULT_*``, ``pipeline.IMAGE_CANDIDATES``,
``pipeline.IMAGE_REPAIRS``)
are one row, and each listed value is another with the other settings at their defaults. Each row is the full row of
``image_diffusion.evaluate`` (stated relations that hold in the drawn images, named objects found,
CLIP score, FD) on the first ``--limit`` scenes of ``--split``, the same seeds for every row. The
studio's defaults are chosen from this table on val, then checked once on test by
``python -m sd3core eval generation``. Only the full row is drawn (``ablations=False``). Time per
image grows with steps, candidates and repairs (each candidate is drawn, decoded and read by the verifier;
guidance and truncation cost nothing extra): ``bench/generation.py`` measures it.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

from sd3core.models import image_diffusion  # noqa: E402
from sd3core.pipeline import IMAGE_CANDIDATES, IMAGE_REPAIRS, Engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/world")
    parser.add_argument("--split", default="val", help="tune on val; test is for the final check")
    parser.add_argument("--limit", type=int, default=500, help="scenes scored per row")
    parser.add_argument("--guidance", default=[], type=float, nargs="+", help="classifier-free guidance scales")
    parser.add_argument("--steps", default=[], type=int, nargs="+", help="sampling steps")
    parser.add_argument("--truncation", default=[], type=float, nargs="+", help="probability mass kept")
    parser.add_argument("--candidates", default=[], type=int, nargs="+", help="images drawn per image kept")
    parser.add_argument("--repairs", default=[], type=int, nargs="+", help="rounds redrawing objects not found")
    args = parser.parse_args()
    engine = Engine()
    defaults = (image_diffusion.DEFAULT_GUIDANCE, image_diffusion.DEFAULT_STEPS, image_diffusion.DEFAULT_TRUNCATION,
                IMAGE_CANDIDATES, IMAGE_REPAIRS)
    print(f"{args.limit} {args.split} scenes per row, the same seeds; full row of image_diffusion.evaluate\n")
    print("| guidance | steps | truncation | candidates | repairs | spatial acc. | object recall | CLIP score | FD |")
    print("|---|---|---|---|---|---|---|---|---|")
    settings = [defaults] + [
        defaults[:at] + (value,) + defaults[at + 1:]
        for at, values in enumerate((args.guidance, args.steps, args.truncation, args.candidates, args.repairs))
        for value in values]
    for setting in dict.fromkeys(settings):  # in order, each once
        guidance, steps, truncation, candidates, repairs = setting
        r = image_diffusion.evaluate(engine.model("image_diffusion"), args.data, args.split, args.limit, steps,
                                     guidance, truncation=truncation, engine=engine, ablations=False,
                                     candidates=candidates, repairs=repairs)
        mark = " (default)" if setting == defaults else ""
        print(f"| {guidance:g}{mark} | {steps} | {truncation:g} | {candidates} | {repairs} | {r['full_spatial_acc']:.3f} | "
              f"{r['full_object_recall']:.3f} | {r['full_clip_score']:.1f} | {r['full_fd_clip']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
