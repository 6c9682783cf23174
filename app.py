"""Entry point (Hugging Face Spaces runs this file): build the engine once, build the studio, launch.

Settings come from the environment (``demo/hosting.py``): GRADIO_SERVER_NAME, GRADIO_SERVER_PORT,
SD3_CONCURRENCY, SD3_QUEUE_SIZE, SD3_MAX_UPLOAD, GRADIO_EXAMPLES_CACHE; SD3_DEVICE picks the device, SD3_THREADS the
CPU threads, SD3_PRECISION the models' precision (float32 or bfloat16; ``sd3core.pipeline.pick_precision``).
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from demo.hosting import launch  # noqa: E402
from demo.studio import build_studio  # noqa: E402
from sd3core.pipeline import Engine  # noqa: E402

if __name__ == "__main__":
    launch(build_studio(Engine()))
