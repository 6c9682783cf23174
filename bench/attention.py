"""Why the diffusions run their own transformer (``conditioning.Transformer``) and not torch's
``nn.TransformerEncoder``: torch's inference fast path, taken under ``inference_mode`` whenever a
key padding mask is given, spends much of its time in ``aten::_masked_softmax`` on CPU.

Run: .venv/bin/python bench/attention.py [--repeats 20]

For each diffusion, its arrow end to end at the studio's defaults (image -> one caption over the
bench renders in turn; text -> one image, a new seed each call), with the model's own stack and with
torch's encoder holding the same weights (loaded under the state-dict names they share), the two
calls interleaved on the same input. Prints the median and p95 of each, the ratio of medians, and
whether the two drew the same outputs.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

import torch  # noqa: E402
from timing import SENTENCE, p95, render_cycle  # noqa: E402

from sd3core.pipeline import Engine  # noqa: E402


class TorchStack(torch.nn.Module):
    """torch's pre-norm ``nn.TransformerEncoder`` with the weights of a ``conditioning.Transformer``,
    called as one: ``(h, keep)``."""

    def __init__(self, ours: torch.nn.Module, width: int, heads: int):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, len(ours.layers), enable_nested_tensor=False)
        self.encoder.load_state_dict(ours.state_dict())
        self.eval()

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.encoder(h, src_key_padding_mask=~keep)


def _same(a: list, b: list) -> bool:
    """Whether two calls' outputs (captions, or images as arrays) are equal."""
    return all(x == y if isinstance(x, str) else (x == y).all() for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    engine = Engine()
    renders = [image for _, image in zip(range(args.repeats), render_cycle())]
    arrows = {"text_diffusion": ("image -> 1 caption", lambda i: engine.image_to_text(renders[i], 1)["captions"]),
              "image_diffusion": ("text -> 1 image", lambda i: engine.text_to_image(SENTENCE, 1, seed=i)["images"])}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {engine.device}\n")
    print("| arrow | stack | median ms | p95 ms | torch / ours | same outputs |\n|---|---|---|---|---|---|")
    for name, (arrow, call) in arrows.items():
        model = engine.model(name)
        stacks = {"ours": model.blocks,
                  "nn.TransformerEncoder": TorchStack(model.blocks, model.config.width, model.config.heads)}
        times, outputs = {stack: [] for stack in stacks}, {stack: [] for stack in stacks}
        for i in range(-1, args.repeats):          # interleaved, so both share the machine's drift; -1 warms up
            for stack, blocks in stacks.items():
                model.blocks = blocks
                start = time.perf_counter()
                out = call(max(i, 0))
                if i >= 0:
                    times[stack].append(time.perf_counter() - start)
                    outputs[stack].append(out)
        model.blocks = stacks["ours"]
        same = all(_same(a, b) for a, b in zip(*outputs.values()))
        base = statistics.median(times["nn.TransformerEncoder"])
        for stack, t in times.items():
            print(f"| {arrow} | {stack} | {1000 * statistics.median(t):.0f} | {1000 * p95(t):.0f} | "
                  f"{base / statistics.median(t):.2f} | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    main()
