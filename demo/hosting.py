"""How the studio is served: environment settings, the Hugging Face ``spaces.GPU`` shim, launch.

Environment: ``SD3_CONCURRENCY`` (model events run at once, shared by all of them; default 1),
``SD3_QUEUE_SIZE`` (requests waiting at most; default 32), ``GRADIO_SERVER_NAME`` (default
127.0.0.1), ``GRADIO_SERVER_PORT`` (default 7860), ``SD3_MAX_UPLOAD`` (largest upload; default 20mb),
``GRADIO_EXAMPLES_CACHE`` (where example results are cached; default ``examples_cache``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import gradio as gr

MODEL_CONCURRENCY_ID = "model"
CSS = """
.sd3-cards {display: flex; flex-wrap: wrap; gap: 10px}
.sd3-card {flex: 1 1 220px; border: 1px solid #ddd; border-radius: 6px; padding: 6px 8px; font-size: 0.85em}
#sd3-gallery img, #sd3-boxes img {image-rendering: pixelated}
"""


def _env_int(name: str, default: int, least: int) -> int:
    """A whole-number environment setting, at least ``least``; ValueError names a bad one."""
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: got {raw!r}, expected a whole number") from None
    if value < least:
        raise ValueError(f"{name}: got {value}, expected at least {least}")
    return value


def model_concurrency() -> int:
    """How many model events may run at once (``SD3_CONCURRENCY``)."""
    return _env_int("SD3_CONCURRENCY", 1, 1)


def queue_size() -> int:
    """How many requests may wait in the queue (``SD3_QUEUE_SIZE``)."""
    return _env_int("SD3_QUEUE_SIZE", 32, 1)


def examples_cache(checkpoint_dir: Path) -> Path:
    """Where the lazily cached example results go: ``.gradio/cached_examples/<manifest sha256[:12]>``,
    so new checkpoints never show results cached from old ones."""
    manifest = hashlib.sha256((checkpoint_dir / "manifest.json").read_bytes()).hexdigest()
    return Path(".gradio") / "cached_examples" / manifest[:12]


def gpu(event):
    """``spaces.GPU(event)`` on Hugging Face ZeroGPU Spaces; ``event`` itself where ``spaces`` is absent."""
    try:
        import spaces
    except ImportError:
        return event
    return spaces.GPU(event)


def launch(studio: gr.Blocks, **overrides) -> None:
    """Queue and launch ``studio`` with the settings above; ``overrides`` go to ``Blocks.launch``."""
    options = {"server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
               "server_port": _env_int("GRADIO_SERVER_PORT", 7860, 1),
               "max_file_size": os.environ.get("SD3_MAX_UPLOAD", "20mb"), "css": CSS,
               "footer_links": ["api", "gradio"], **overrides}
    studio.queue(max_size=queue_size()).launch(**options)
