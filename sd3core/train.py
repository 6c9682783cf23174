"""Training: one loop for every stage, in one process or under ``torchrun`` (DDP; gloo on CPU).

A stage is a module of ``sd3core.models`` that provides, as plain functions:

- ``Config``: a dataclass of the model's constructor values (saved in the checkpoint);
- ``build(config) -> nn.Module``;
- ``load_data(data_dir, split, limit, config) -> torch.utils.data.Dataset`` of dict samples shaped
  for the run's ``config`` (e.g. its padding, its image side, whether it has a dual term);
- ``loss(model, batch) -> (loss, {name: float})``;
- ``evaluate(model, data_dir, split, limit) -> {metric: float}`` on held-out data;
- optionally ``checkpoints_read(config) -> tuple of file names``: shipped checkpoints the run reads
  (the manifest entry records their sha256 under "reads").

A count model (``caption_grammar``) provides ``fit(data_dir, split, limit) -> nn.Module`` instead of
``load_data`` and ``loss``: it is fitted in one pass over the training split, no optimiser.

Usage (same command under ``torchrun --nproc_per_node 2``)::

    python -m sd3core train vqvae --data data/world --steps 20000 --batch 32

The run directory (``runs/STAGE``) keeps ``train.log`` and ``last.pt`` (model, optimiser, step), so a
stopped run resumes where it was. The final weights go to ``checkpoints/STAGE.pt`` and the manifest
records the exact command, data, seed, wall time and the held-out metrics.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from .checkpoints import (CHECKPOINT_DIR, load_checkpoint, read_manifest, record_checkpoint, save_checkpoint,
                          stored_weights)
from .world.build import SPLIT_SEEDS

STAGES = ("vqvae", "detector", "clip", "dgae", "graph_diffusion", "image_diffusion", "text_diffusion",
          "caption_grammar")


@dataclass
class TrainArgs:
    stage: str
    data: str = "data/world"          # directory of built world splits
    steps: int = 10_000               # optimiser steps
    batch: int = 32                   # samples per step, summed over processes
    lr: float = 1e-3                  # peak learning rate (linear warm-up, cosine decay)
    warmup: int = 200                 # warm-up steps
    weight_decay: float = 0.0
    train_limit: int = 0              # use the first N training scenes (0: all)
    eval_split: str = "test"          # held-out split for the final metrics
    eval_limit: int = 1000            # scenes evaluated at the end
    seed: int = 0
    run_dir: str = "runs"             # train.log and resumable last.pt go to run_dir/stage
    out_dir: str = str(CHECKPOINT_DIR)
    log_every: int = 50
    save_every: int = 500
    threads: int = 0                  # torch threads per process (0: cores / processes)
    config: str = ""                  # JSON object of model Config values to override, e.g. '{"dual_weight": 1}'
    init: str = ""                    # start from this shipped checkpoint's weights (e.g. graph_diffusion.pt;
                                      # its config, then --config); parameters it lacks, or has in
                                      # another shape, start fresh
    precision: str = "float32"        # or "bfloat16": forward pass and loss under autocast (weights,
                                      # optimiser and the final evaluation stay float32)


def stage_module(stage: str):
    """The models module that defines ``stage`` (see the module docstring for what it provides)."""
    if stage not in STAGES:
        raise ValueError(f"stage: got {stage!r}, expected one of {', '.join(STAGES)}")
    return importlib.import_module(f"sd3core.models.{stage}")


def _distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when run under torchrun."""
    if "RANK" not in os.environ:
        return 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(rank % torch.cuda.device_count())
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def _launch(world: int) -> str:
    """How the training command was started: ``python``, or ``torchrun`` with its process count."""
    return f"torchrun --nproc_per_node {world}" if world > 1 else "python"


def _lr_at(step: int, args: TrainArgs) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _to_device(batch, device: torch.device):
    """A collated batch (tensors, possibly in nested dicts) on ``device``."""
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch.to(device) if torch.is_tensor(batch) else batch


def _start_from(model: torch.nn.Module, weights: dict, name: str, report: bool) -> None:
    """Load the ``weights`` of checkpoint ``name`` that fit ``model`` (same name and shape); the
    model's other parameters start fresh (a grown decoder, a new head), listed when ``report``."""
    own = model.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    if report:
        fresh = [k for k in own if k not in fitting]
        dropped = [k for k in weights if k not in fitting]
        print(f"started from {name}; new parameters: {', '.join(fresh) or 'none'}; "
              f"its weights left out: {', '.join(dropped) or 'none'}", file=sys.stderr)


def _batches(loader: DataLoader, sampler):
    epoch = 0
    while True:
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def train(args: TrainArgs, config_overrides: dict | None = None, command: str | None = None) -> dict:
    """Run (or resume) a stage's training; returns its final held-out metrics (rank 0)."""
    module = stage_module(args.stage)
    if args.precision not in ("float32", "bfloat16"):
        raise ValueError(f"--precision: got {args.precision!r}, expected 'float32' or 'bfloat16'")
    if hasattr(module, "fit"):
        return _fit(module, args, command)
    rank, world = _distributed()
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
    torch.manual_seed(args.seed + rank)
    device = _device(rank)
    run_dir = Path(args.run_dir) / args.stage
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "train.log", "a") if rank == 0 else None

    base = load_checkpoint(args.init) if args.init else {"config": {}, "state_dict": {}}
    # what --init started from (read before this run replaces its manifest entry)
    init = {k: read_manifest()[args.init][k] for k in ("sha256", "command")} if args.init else {}
    overrides = {**base["config"], **(json.loads(args.config) if args.config else {}), **(config_overrides or {})}
    unknown = sorted(set(overrides) - {f.name for f in fields(module.Config)})
    if unknown:
        source = f"--init {args.init} or --config" if args.init else "--config"
        raise ValueError(f"{source}: {', '.join(unknown)} not among the {args.stage} model's config values")
    config = module.Config(**overrides)
    model = module.build(config).to(device)
    if args.init:
        _start_from(model, base["state_dict"], args.init, rank == 0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, wall = 0, 0.0
    resume = run_dir / "last.pt"
    if resume.exists():
        state = torch.load(resume, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, wall = state["step"], state["wall_time_s"]
    trained = DistributedDataParallel(model) if world > 1 else model

    data = module.load_data(args.data, "train", args.train_limit, config)
    generator = torch.Generator().manual_seed(args.seed)
    sampler = DistributedSampler(data, seed=args.seed) if world > 1 else RandomSampler(data, generator=generator)
    loader = DataLoader(data, batch_size=args.batch // world, sampler=sampler, drop_last=True)
    batches = _batches(loader, sampler)

    bar = tqdm(total=args.steps, initial=step, desc=f"train {args.stage}", disable=rank != 0)
    start = time.time() - wall
    model.train()
    while step < args.steps:
        batch = _to_device(next(batches), device)
        for group in optimiser.param_groups:
            group["lr"] = _lr_at(step, args)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bfloat16"):
            loss, logs = module.loss(trained, batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        step += 1
        bar.update(1)
        if rank == 0 and step % args.log_every == 0:
            line = " ".join(f"{k}={v:.4g}" for k, v in {"loss": loss.item(), **logs}.items())
            log.write(f"step {step} lr={_lr_at(step, args):.3g} {line} wall={time.time() - start:.0f}s\n")
            log.flush()
            bar.set_postfix_str(line[:60])
        if rank == 0 and (step % args.save_every == 0 or step == args.steps):
            tmp = resume.with_name("last.pt.tmp")
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "step": step, "wall_time_s": time.time() - start}, tmp)
            os.replace(tmp, resume)
    bar.close()
    metrics = {}
    if rank == 0:
        model.load_state_dict(stored_weights(model.state_dict()))    # measure what ships
        model.eval()
        metrics = module.evaluate(model, args.data, args.eval_split, args.eval_limit)
        command = command or _launch(world) + " -m sd3core train " + shlex.join(sys.argv[2:])
        _ship(args, config, model, metrics, len(data), command,
              {"seed": args.seed, "steps": step, "batch": args.batch, "processes": world, "precision": args.precision,
               "wall_time_s": round(time.time() - start, 1),
               **({"init": {"file": args.init, **init}} if args.init else {})})
        log.write(f"final {metrics}\n")
        log.close()
    if world > 1:
        dist.destroy_process_group()
    return metrics


def _ship(args: TrainArgs, config, model: torch.nn.Module, metrics: dict, n: int, command: str, run: dict) -> None:
    """Write ``out_dir/STAGE.pt`` and its manifest entry: the command, the data (``n`` training
    scenes), what ``run`` says of the run, the held-out ``metrics`` and the model's ``config``."""
    name = f"{args.stage}.pt"
    read = getattr(stage_module(args.stage), "checkpoints_read", lambda config: ())(config)
    shipped = read_manifest() if read else {}     # read before this run's entry is written
    save_checkpoint(Path(args.out_dir) / name, asdict(config), model.state_dict())
    record_checkpoint(name, {
        "command": command,
        "data": {"dir": args.data, "split": "train", "first_seed": SPLIT_SEEDS["train"],
                 "n": n, "eval_split": args.eval_split, "eval_n": args.eval_limit},
        **run, **({"reads": {f: shipped[f]["sha256"] for f in read}} if read else {}),
        "metrics": metrics, "config": asdict(config)}, args.out_dir)


def _fit(module, args: TrainArgs, command: str | None) -> dict:
    """Fit a count model on the training split and ship it with its held-out metrics (in one
    process: under torchrun, the other ranks leave it to rank 0)."""
    from .generation_data import split_size
    if int(os.environ.get("RANK", 0)) != 0:
        return {}
    start = time.time()
    model = module.fit(args.data, "train", args.train_limit)
    metrics = module.evaluate(model, args.data, args.eval_split, args.eval_limit)
    n = min(args.train_limit or math.inf, split_size(args.data, "train"))
    _ship(args, model.config, model, metrics, n, command or "python -m sd3core train " + shlex.join(sys.argv[2:]),
          {"wall_time_s": round(time.time() - start, 1)})
    return metrics


@torch.no_grad()
def heldout_loss(stage: str, model: torch.nn.Module, data_dir: str, split: str, limit: int, seed: int = 0,
                 batch: int = 64) -> dict[str, float]:
    """A stage's training loss (and its logs) on the first ``limit`` scenes of ``split``, the mean
    over batches of ``batch`` examples, with torch's generator seeded: a repeatable figure of a checkpoint."""
    module = stage_module(stage)
    loader = DataLoader(module.load_data(data_dir, split, limit, model.config), batch_size=batch, shuffle=False)
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    model.eval()
    figures = []
    for chunk in loader:
        loss, logs = module.loss(model, _to_device(chunk, device))
        figures.append({"loss": loss.item(), **logs})
    return {f"{stage}_heldout_{k}": round(sum(f[k] for f in figures) / len(figures), 4) for k in figures[0]}
