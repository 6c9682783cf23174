"""Entry point (Hugging Face Spaces runs this file): build the studio and launch it."""
import os

from demo.studio import build_studio

if __name__ == "__main__":
    build_studio().queue(max_size=int(os.environ.get("SD3_QUEUE_SIZE", "32"))).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
