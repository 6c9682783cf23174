"""Time to the first answer: ``python app.py`` started as ``make demo`` starts it, then one
client reads a sentence and asks for 4 images at the default settings (the models load on that first
request). Prints when the page answered and when the images came back, in seconds from launch.

Run: .venv/bin/python bench/startup.py [--timeout 300]
The aim from the performance issue: first response, models loaded, within 20 s of launch.
"""
import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "a red cube to the left of a blue sphere"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, server: subprocess.Popen, deadline: float) -> None:
    """Poll ``url`` until it answers; exit with a message if the server dies or time runs out."""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"app.py exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"no answer from {url} in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait at most")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    start = time.monotonic()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_page(url, server, start + args.timeout)
        page = time.monotonic() - start
        from gradio_client import Client
        client = Client(url, verbose=False, analytics_enabled=False)
        objects, relations, _ = client.predict(SENTENCE, api_name="/parse")
        empty = {"headers": ["id"], "data": []}
        *_, gallery, _, _, status = client.predict(objects, relations, empty, empty, 4, 16, 3.0, 0,
                                                   api_name="/regenerate_images")
        first = time.monotonic() - start
    finally:
        server.terminate()
        server.wait(30)
    print("| from `python app.py` | seconds |\n|---|---|")
    print(f"| page answers | {page:.1f} |")
    print(f"| first 4 images back (sentence read, lifted, drawn; models loaded on this request) | {first:.1f} |")
    print(f"\nstatus of that request: {status} ({len(gallery)} images)")


if __name__ == "__main__":
    main()
