"""Screenshots of each tab at work for the README: launch the studio on loopback, drive it with
headless Chromium (Playwright), save one PNG per tab (the text tab with the VQ token grids shown).

    python -m demo.screenshots [--checkpoints DIR] [--out assets/screenshots]
"""
from __future__ import annotations

import argparse
import socket
from pathlib import Path

from sd3core.pipeline import Engine

from .hosting import launch
from .studio import EXAMPLES, build_studio

CHROMIUM = "/usr/bin/chromium"
SENTENCE = "a yellow cylinder is in front of a purple pyramid. A cyan ball is behind the pyramid."
WAIT_MS = 300_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(page, text: str) -> None:
    """Wait until ``text`` shows; raise RuntimeError with the message if an error toast shows first."""
    error = page.locator(".toast-body.error")
    page.get_by_text(text).first.or_(error.first).wait_for()
    if error.count():
        raise RuntimeError(f"the studio reported an error while waiting for {text!r}: {error.first.inner_text()}")


def take(url: str, out: Path) -> list[Path]:
    """Drive the three tabs at ``url`` and save text_to_image.png, image_to_text.png, inspector.png."""
    from playwright.sync_api import sync_playwright
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        page.goto(url)

        page.fill("#sd3-sentence textarea", SENTENCE)
        page.press("#sd3-sentence textarea", "Enter")
        _wait_for(page, "Parsed:")
        page.get_by_role("button", name="Settings").click()
        page.get_by_label("show each image's VQ token grid", exact=False).check()
        page.get_by_role("button", name="Regenerate").click()
        _wait_for(page, "drew 4 images")
        page.locator("#sd3-token-grids img").nth(3).wait_for()
        shots.append(out / "text_to_image.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.get_by_role("tab", name="Image → Text").click()
        page.locator("#sd3-image-file input[type='file']").set_input_files(str(sorted(EXAMPLES.glob("*.png"))[1]))
        page.get_by_role("button", name="Detect objects").click()
        _wait_for(page, "Detected:")
        page.get_by_role("button", name="Regenerate").click()  # the visible tab's
        _wait_for(page, "wrote 4 captions")
        shots.append(out / "image_to_text.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.get_by_role("tab", name="3DSG inspector").click()
        page.get_by_role("button", name="Text tab: TSG vs its 3DSG").click()
        _wait_for(page, "read as DESIGN.md")
        shots.append(out / "inspector.png")
        page.screenshot(path=shots[-1], full_page=True)
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", help="checkpoint directory (default: the shipped ones)")
    parser.add_argument("--out", default="assets/screenshots", help="folder for the PNGs")
    args = parser.parse_args()
    studio = build_studio(Engine(args.checkpoints) if args.checkpoints else Engine())
    port = _free_port()
    launch(studio, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        for path in take(f"http://127.0.0.1:{port}/", Path(args.out)):
            print(path)
    finally:
        studio.close()


if __name__ == "__main__":
    main()
