"""Command line: ``python -m sd3core COMMAND …`` (``--help`` on any command lists its options)."""
from __future__ import annotations

import argparse
import sys

SHEET_SCENES = 4  # scenes per half of the generation sheet


def _world_build(args: argparse.Namespace) -> None:
    from .world.build import build_split
    build_split(args.split, args.n, args.out, size=args.size, shard_size=args.shard_size,
                workers=args.workers)
    print(f"wrote {args.n} {args.split} scenes to {args.out}")


def _world_show(args: argparse.Namespace) -> None:
    from .world.sheet import scene_card
    scene_card(args.seed, size=args.size).save(args.out)
    print(f"wrote {args.out}")


def _world_sheet(args: argparse.Namespace) -> None:
    from .world.build import scene_seed
    from .world.sheet import contact_sheet
    seeds = [scene_seed(args.split, i) for i in range(args.first, args.first + args.n)]
    contact_sheet(seeds, columns=args.columns).save(args.out)
    print(f"wrote {args.out}")


def _parse(args: argparse.Namespace) -> int:
    from .textparse import parse_cli
    sys.stdin.reconfigure(errors="replace")
    return parse_cli(sys.stdin, sys.stdout)


def _eval_engine(record_slice: bool):
    """The Engine an ``eval`` command measures with: float32 when it records slice figures (the
    precision ``tests/test_shipped.py`` reproduces them in), else the default precision."""
    from .pipeline import Engine
    if not record_slice:
        return Engine()
    import torch
    return Engine(precision=torch.float32)


def _eval_perception(args: argparse.Namespace) -> None:
    import json

    from .evaluate import SLICE_SCENES, perception_report, perception_sheet, record_slice_checks
    from .world.build import load_split
    engine = _eval_engine(args.record_slice)
    report = perception_report(engine, args.data, args.split, args.limit)
    print(json.dumps(report, indent=1))
    if args.record_slice:
        if (args.split, args.limit) != ("test", SLICE_SCENES):
            raise ValueError(f"--record-slice: the slice is the first {SLICE_SCENES} test scenes; "
                             f"run with --split test --limit {SLICE_SCENES}")
        record_slice_checks(report, "python -m sd3core eval perception --data data/world "
                                    f"--split test --limit {SLICE_SCENES}")
        print("recorded the slice figures in checkpoints/manifest.json")
    if args.sheet:
        arrays, _ = load_split(args.data, args.split, ("rgb",))
        perception_sheet(engine, list(arrays["rgb"][:8])).save(args.sheet)
        print(f"wrote {args.sheet}")


def _lift(args: argparse.Namespace) -> None:
    from .graph import SceneGraph
    from .pipeline import Engine
    text = sys.stdin.read() if args.graph == "-" else open(args.graph).read()
    graphs = Engine().lift_to_3d_samples(SceneGraph.from_json(text), args.n, args.steps, args.seed,
                                         args.temperature)
    for graph in graphs:
        print(graph.to_json())


def _eval_graph(args: argparse.Namespace) -> None:
    import json

    from .evaluate import GRAPH_SLICE_FIGURES, SLICE_SCENES, record_slice_checks
    from .models.graph_diffusion import DEFAULT_STEPS, POSITION_TEMPERATURE, evaluate
    slice_run = (args.split, args.limit, args.steps, args.seed, args.temperature) == ("test", SLICE_SCENES, None, 0, None)
    if args.record_slice and not slice_run:
        raise ValueError(f"--record-slice: the slice is the first {SLICE_SCENES} test scenes at the default "
                         f"steps and seed 0; run with --split test --limit {SLICE_SCENES}")
    from .models import dgae
    engine = _eval_engine(args.record_slice)
    report = evaluate(engine.model("graph_diffusion"), args.data, args.split, args.limit,
                      args.steps or DEFAULT_STEPS, args.seed, with_bound=not args.record_slice,
                      temperature=POSITION_TEMPERATURE if args.temperature is None else args.temperature)
    report.update({f"dgae_{k}": v for k, v in dgae.evaluate(engine.model("dgae"), args.data, args.split,
                                                           args.limit).items()})
    print(json.dumps(report, indent=1))
    if args.record_slice:
        record_slice_checks(report, f"python -m sd3core eval graph --data data/world --split test "
                                    f"--limit {SLICE_SCENES} --record-slice", GRAPH_SLICE_FIGURES)
        print("recorded the slice figures in checkpoints/manifest.json")


def _generate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .images import save_png
    from .pipeline import IMAGE_CANDIDATES, Engine
    candidates = IMAGE_CANDIDATES if args.candidates is None else args.candidates
    result = Engine().text_to_image(args.text, args.n, args.steps, args.guidance, args.seed, candidates=candidates)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tsg.json").write_text(result["tsg"].to_json(indent=1))
    (out / "graph3d.json").write_text(result["graph3d"].to_json(indent=1))
    for k, image in enumerate(result["images"]):
        save_png(image, out / f"sample-{k}.png")
    print(f"wrote {len(result['images'])} images, tsg.json and graph3d.json to {out}")


def _caption(args: argparse.Namespace) -> None:
    import json

    from .images import read_image
    from .pipeline import MAX_IMAGE_PIXELS, Engine
    result = Engine().image_to_text(read_image(args.image, MAX_IMAGE_PIXELS), args.n, args.steps, args.seed)
    if args.json:
        print(json.dumps({"captions": result["captions"], "vsg": result["vsg"].to_dict(),
                          "graph3d": result["graph3d"].to_dict()}))
    else:
        print("\n".join(result["captions"]))


def _eval_generation(args: argparse.Namespace) -> None:
    import json

    from .evaluate import GENERATION_SLICE_FIGURES, SLICE_SCENES, generation_sheet, record_slice_checks
    from .models import caption_grammar, image_diffusion, text_diffusion
    from .pipeline import Engine
    from .train import heldout_loss
    from .world.build import load_split
    engine = _eval_engine(args.record_slice)
    if args.record_slice:
        if (args.split, args.limit) != ("test", SLICE_SCENES):
            raise ValueError(f"--record-slice: the slice is the first {SLICE_SCENES} test scenes; "
                             f"run with --split test --limit {SLICE_SCENES}")
        report = {k: v for stage in ("image_diffusion", "text_diffusion")
                  for k, v in heldout_loss(stage, engine.model(stage), args.data, "test", SLICE_SCENES).items()}
        report.update({f"caption_grammar_{k}": v for k, v in caption_grammar.evaluate(
            engine.model("caption_grammar"), args.data, "test", SLICE_SCENES).items()})
        print(json.dumps(report, indent=1))
        record_slice_checks(report, f"python -m sd3core eval generation --data data/world --split test "
                                    f"--limit {SLICE_SCENES} --record-slice", GENERATION_SLICE_FIGURES)
        print("recorded the slice figures in checkpoints/manifest.json")
        return
    if args.sheet:
        arrays, records = load_split(args.data, args.split, ("rgb",))
        texts = [r["captions"][0]["text"] for r in records[:SHEET_SCENES]]
        renders = list(arrays["rgb"][SHEET_SCENES:2 * SHEET_SCENES])
        generation_sheet(engine, texts, renders, seed=args.seed).save(args.sheet)
        print(f"wrote {args.sheet}")
        return
    if args.graph_diffusion:
        engine.set_model("graph_diffusion", Engine(args.graph_diffusion).model("graph_diffusion"))
    report = {"st2i": image_diffusion.evaluate(engine.model("image_diffusion"), args.data, args.split, args.limit,
                                               seed=args.seed, engine=engine),
              "si2t": text_diffusion.evaluate(engine.model("text_diffusion"), args.data, args.split, args.limit,
                                              seed=args.seed, engine=engine)}
    print(json.dumps(report, indent=1))
    print(generation_table(report))


def generation_table(report: dict) -> str:
    """The evaluation table of issue "ST2I and SI2T" as Markdown, from ``_eval_generation``'s report."""
    st2i, si2t = report["st2i"], report["si2t"]
    cell = lambda d, k: f"{d[k]:.3f}" if k in d else "–"  # noqa: E731
    lines = ["| | spatial acc. | object recall | FD (CLIP) | CLIP score | BLEU-4 | CIDEr | SG-F1 | rel. correct |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, image_row, text_row in (("SD3 (full)", "full", "full"),
                                      ("SD3, one image drawn, not verified", "one_draw", ""),
                                      ("without 3DSG (text only / image only)", "text_only", "image_only"),
                                      ("real renders / gold captions (ceiling)", "real", "gold"),
                                      ("real renders through the VQ tokens (image ceiling)", "tokenized", "")):
        lines.append(f"| {name} | " + " | ".join(
            [cell(st2i, f"{image_row}_{k}") for k in ("spatial_acc", "object_recall", "fd_clip", "clip_score")]
            + [cell(si2t, f"{text_row}_{k}") for k in ("bleu4", "cider", "sg_f1", "relation_correct")]) + " |")
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> None:
    from dataclasses import fields

    from .train import TrainArgs, train
    values = {f.name: getattr(args, f.name) for f in fields(TrainArgs)}
    metrics = train(TrainArgs(**values))
    if metrics:
        print(" ".join(f"{k}={v}" for k, v in metrics.items()))


def _add_train_parser(commands) -> None:
    from dataclasses import MISSING, fields

    from .train import STAGES, TrainArgs
    train = commands.add_parser("train", help="train one stage (also under torchrun, DDP)")
    train.add_argument("stage", choices=STAGES)
    for f in fields(TrainArgs):
        if f.name != "stage" and f.default is not MISSING:
            train.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    train.set_defaults(run=_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sd3core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    world = commands.add_parser("world", help="the synthetic spatial world").add_subparsers(
        dest="world_command", required=True)
    build = world.add_parser("build", help="render a split of scenes with gold graphs and captions")
    build.add_argument("--split", required=True, choices=("train", "val", "test"))
    build.add_argument("--n", type=int, required=True, help="number of scenes")
    build.add_argument("--out", required=True, help="output directory")
    build.add_argument("--size", type=int, default=128, help="image side in pixels")
    build.add_argument("--shard-size", type=int, default=1000, help="scenes per shard")
    build.add_argument("--workers", type=int, default=2, help="worker processes")
    build.set_defaults(run=_world_build)

    show = world.add_parser("show", help="render one scene with its graph drawn beside it")
    show.add_argument("--seed", type=int, required=True)
    show.add_argument("--out", required=True, help="PNG path")
    show.add_argument("--size", type=int, default=256, help="image side in pixels")
    show.set_defaults(run=_world_show)

    sheet = world.add_parser("sheet", help="a contact sheet of scenes with one caption each")
    sheet.add_argument("--split", default="val", choices=("train", "val", "test"))
    sheet.add_argument("--first", type=int, default=0, help="index of the first scene")
    sheet.add_argument("--n", type=int, default=16)
    sheet.add_argument("--columns", type=int, default=4)
    sheet.add_argument("--out", required=True, help="PNG path")
    sheet.set_defaults(run=_world_sheet)

    parse = commands.add_parser("parse", help="sentences on stdin, one a line -> one JSON TSG a line")
    parse.add_argument("--jsonl", action="store_true", help="accepted for scripts; output is always JSON lines")
    parse.set_defaults(run=_parse)

    evaluate = commands.add_parser("eval", help="figures of the shipped models").add_subparsers(
        dest="eval_command", required=True)
    perception = evaluate.add_parser("perception", help="tokenizer PSNR, detector metrics, objects kept")
    perception.add_argument("--data", default="data/world", help="directory of built world splits")
    perception.add_argument("--split", default="test", choices=("train", "val", "test"))
    perception.add_argument("--limit", type=int, default=1000, help="scenes evaluated")
    perception.add_argument("--sheet", default="", help="also write a PNG of 8 scenes: originals, "
                            "reconstructions, detections")
    perception.add_argument("--record-slice", action="store_true", help="write the figures into "
                            "each checkpoint's manifest entry as the slice check the tests reproduce "
                            "(with --split test --limit 32)")
    perception.set_defaults(run=_eval_perception)

    graph = evaluate.add_parser("graph", help="3DSG lifting: triplet recall vs the raw input, "
                                "stated relations kept, depth order, consistency; DGAE reconstruction")
    graph.add_argument("--data", default="data/world", help="directory of built world splits")
    graph.add_argument("--split", default="test", choices=("train", "val", "test"))
    graph.add_argument("--limit", type=int, default=1000, help="scenes evaluated")
    graph.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the studio's)")
    graph.add_argument("--seed", type=int, default=0)
    graph.add_argument("--temperature", type=float, default=None, help="position temperature "
                       "(default: the studio's)")
    graph.add_argument("--record-slice", action="store_true", help="write the figures into the "
                       "checkpoint's manifest entry as the slice check the tests reproduce "
                       "(with --split test --limit 32; skips the TSG recall ceiling, which needs the train split)")
    graph.set_defaults(run=_eval_graph)

    lift = commands.add_parser("lift", help="a TSG or VSG JSON file (- for stdin) -> its 3DSG as JSON")
    lift.add_argument("graph", help="scene graph JSON (the DESIGN.md format), or - for stdin")
    lift.add_argument("--n", type=int, default=1, help="samples, one JSON line each")
    lift.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the studio's)")
    lift.add_argument("--seed", type=int, default=0)
    lift.add_argument("--temperature", type=float, default=None,
                      help="0: most likely positions (the default); up to 2: more varied scenes")
    lift.set_defaults(run=_lift)

    generation = evaluate.add_parser("generation", help="the ST2I / SI2T table: spatial accuracy, object "
                                     "recall, FD, CLIP score; BLEU-4, CIDEr, SG-F1, relation correctness")
    generation.add_argument("--data", default="data/world", help="directory of built world splits")
    generation.add_argument("--split", default="test", choices=("train", "val", "test"))
    generation.add_argument("--limit", type=int, default=1000, help="scenes evaluated")
    generation.add_argument("--seed", type=int, default=0)
    generation.add_argument("--record-slice", action="store_true", help="instead: the diffusions' held-out "
                            "loss on the first 32 test scenes, written into their manifest entries as the "
                            "slice check the tests reproduce (with --split test --limit 32)")
    generation.add_argument("--sheet", metavar="PNG", help=f"instead: the sheet of ST2I for the first "
                            f"{SHEET_SCENES} scenes' captions (4 images each) and SI2T for the next {SHEET_SCENES} "
                            "renders (4 captions each)")
    generation.add_argument("--graph-diffusion", metavar="DIR", help="lift with the graph_diffusion.pt of this "
                            "checkpoint directory (its manifest.json) instead of the shipped one, e.g. a lifter "
                            "fine-tuned with the dual term")
    generation.set_defaults(run=_eval_generation)

    generate = commands.add_parser("generate", help="a sentence -> its TSG, 3DSG and n images (ST2I)")
    generate.add_argument("text", help="the sentence, e.g. \"a red cube left of a blue ball\"")
    generate.add_argument("--n", type=int, default=4, help="images")
    generate.add_argument("--out", required=True, help="directory for sample-K.png, tsg.json, graph3d.json")
    generate.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the studio's)")
    generate.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the studio's)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--candidates", type=int, default=None,
                          help="images drawn per image kept, the verifier choosing (default: the studio's; 1: faster)")
    generate.set_defaults(run=_generate)

    caption = commands.add_parser("caption", help="an image file -> n captions, one a line (SI2T)")
    caption.add_argument("image", help="PNG or JPEG file")
    caption.add_argument("--n", type=int, default=1, help="captions")
    caption.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the studio's)")
    caption.add_argument("--seed", type=int, default=0)
    caption.add_argument("--json", action="store_true", help="one JSON line with the captions, VSG and 3DSG")
    caption.set_defaults(run=_caption)

    _add_train_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
