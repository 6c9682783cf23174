"""Run the benchmarks and write ``bench/results.md``: one section per bench, each with the command
that made it, the machine and the commit it ran on.

Run: .venv/bin/python bench/run_all.py [--only arrows startup ...]   (``make bench`` runs them all)
     .venv/bin/python bench/run_all.py --record quality_speed out.md   (a bench's output run by hand)
With ``--only``, the other sections already in ``results.md`` are kept as they are; each section
says when and where it was measured. A bench that fails leaves its old section and makes the run
exit non-zero. The benches run one after another: two at once would share the cores and skew both.
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.md"
# name -> (script and arguments, what it answers); in the order of results.md
BENCHES = {
    "arrows": (["arrows.py"], "every arrow: latency, throughput, memory, baselines; roofline"),
    "startup": (["startup.py"], "first response after launching the studio"),
    "quality_speed": (["quality_speed.py"], "quality against diffusion steps (the default's choice)"),
    "image_sampling": (["image_sampling.py", "--guidance", "3", "4", "6", "8", "--steps", "12", "24", "32",
                        "--truncation", "0.8", "1"], "image quality against guidance, steps and truncation (the defaults' choice)"),
    "caption_candidates": (["caption_candidates.py"], "caption quality against steps and candidates"),
    "caption_ends": (["caption_ends.py"], "what generated captions' relations join, and where they hold"),
    "compile": (["compile.py"], "torch.compile against eager"),
    "attention": (["attention.py"], "our transformer against nn.TransformerEncoder's fast path"),
    "generation": (["generation.py"], "ST2I/SI2T end to end, image diffusion at several steps"),
    "lift": (["lift.py"], "the 3DSG lift at several steps, batched against one by one"),
    "parser": (["parser.py"], "our parser against sng_parser on VSD"),
    "world": (["world.py"], "building the synthetic world"),
}
NO_GPU_NOTE = ("The GPU path (bf16 autocast on CUDA, sampling loops without host-device round trips) has "
               "not been measured: no CUDA GPU was available where these ran.")


def machine() -> str:
    """The CPU model, core count and accelerator, in words."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, {gpu}"


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def read_sections() -> dict[str, str]:
    """The sections of the existing results.md by bench name."""
    if not RESULTS.exists():
        return {}
    parts = re.split(r"^## (\w+)\n", RESULTS.read_text(), flags=re.M)
    return {name: body.rstrip() + "\n" for name, body in zip(parts[1::2], parts[2::2])}


def section(name: str, output: str, when: datetime.datetime, by_hand: bool = False) -> str:
    """A bench's section: what it answers, its command, when, the commit and machine, its output."""
    script, about = BENCHES[name]
    how = "run by hand, recorded with `run_all.py --record` at commit" if by_hand else "commit"
    return (f"{about}. `.venv/bin/python bench/{' '.join(script)}`, {when:%Y-%m-%d %H:%M} UTC, {how} "
            f"{commit()}, {machine()}, torch {torch.__version__}.\n\n{output.strip()}\n")


def run(name: str) -> str:
    """Run one bench; its section, or raise."""
    script, _ = BENCHES[name]
    print(f"running {name} ...", file=sys.stderr, flush=True)
    out = subprocess.run([sys.executable, str(BENCH / script[0]), *script[1:]], cwd=BENCH.parent,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return section(name, out.stdout, datetime.datetime.now(datetime.timezone.utc))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="run these, keep the other sections")
    parser.add_argument("--record", nargs=2, metavar=("NAME", "FILE"),
                        help="instead of running: record FILE, the stdout of bench NAME run by hand with its "
                             "command here on this commit (for long ones), dated by the file's time")
    args = parser.parse_args()
    sections, failed = read_sections(), []
    if args.record:
        name, path = args.record
        if name not in BENCHES:
            parser.error(f"--record: {name!r} is not one of {', '.join(BENCHES)}")
        when = datetime.datetime.fromtimestamp(Path(path).stat().st_mtime, datetime.timezone.utc)
        sections[name] = section(name, Path(path).read_text(), when, by_hand=True)
    for name in [] if args.record else args.only or BENCHES:
        try:
            sections[name] = run(name)
        except RuntimeError as error:
            print(error, file=sys.stderr)
            failed.append(name)
    note = "" if torch.cuda.is_available() else NO_GPU_NOTE + "\n\n"
    body = "".join(f"## {name}\n{sections[name]}\n" for name in BENCHES if name in sections)
    text = ("# Benchmark results\n\nWritten by `bench/run_all.py` (`make bench`); each section says how, "
            f"when and where it was measured. Compare figures within a section: absolute times on shared "
            f"machines drift.\n\n{note}{body}")
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(RESULTS)  # never a half-written results.md
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
