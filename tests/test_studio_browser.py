"""A real browser: headless Chromium driven by Playwright types a sentence, edits a relation cell in
the TSG table, regenerates, and sees the 3D view and the image change; picks an example sentence
(its results computed on the first click and cached), regenerates it with the VQ token grids on. Skipped, with the reason,
where Playwright or /usr/bin/chromium is missing (``make test`` installs both).

By default the studio runs on the two-step test checkpoints, whose images hardly depend on the
graph (gradio serves equal bytes at one address): the test then checks that the gallery's
faithfulness cards were redrawn for the edited relation.
``SD3_BROWSER_SHIPPED=1`` runs it on the shipped checkpoints and also requires new image bytes.
"""
import hashlib
import os
import shutil
import urllib.request

import pytest

from demo.hosting import launch
from demo.studio import build_studio
from sd3core.pipeline import Engine
from test_demo import StatedRelationsEngine
from test_studio_api import free_port

CHROMIUM = "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)", allow_module_level=True)

WAIT_MS = 120_000
SHIPPED = os.environ.get("SD3_BROWSER_SHIPPED") == "1"


@pytest.fixture(scope="module")
def studio_url(request):
    engine = Engine() if SHIPPED else StatedRelationsEngine(request.getfixturevalue("tiny_checkpoints"), device="cpu")
    studio = build_studio(engine)
    port = free_port()
    launch(studio, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    studio.close()


@pytest.fixture
def page(studio_url):
    """A fresh headless Chromium page on the studio."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.set_default_timeout(WAIT_MS)
        page.goto(studio_url)
        yield page
        browser.close()


def predicates_in_3d_view(page) -> list[str]:
    """The predicate labels the Plotly 3D view of the text tab draws."""
    return page.evaluate("() => document.querySelector('#sd3-tsg-figure .js-plotly-plot').data"
                         ".find(t => t.name === 'predicates').text")


def first_image(page) -> str:
    """The sha256 of the first generated image's bytes, fetched from the server."""
    with urllib.request.urlopen(page.locator("#sd3-gallery img").first.get_attribute("src")) as response:
        return hashlib.sha256(response.read()).hexdigest()


def test_edit_a_relation_and_regenerate_in_the_browser(page):
    page.fill("#sd3-sentence textarea", "a red cube to the left of a blue sphere")
    page.press("#sd3-sentence textarea", "Enter")
    page.get_by_text("Parsed: 2 objects, 1 relations.").wait_for()
    regenerate = page.get_by_role("button", name="Regenerate")
    regenerate.click()
    page.get_by_text("Lifted the TSG to 3D; drew 4 images from the sentence").wait_for()
    view, image = predicates_in_3d_view(page), first_image(page)
    if not SHIPPED:
        assert view == ["#0 → #1: to the left of"]

    cell = page.locator("#sd3-tsg-relations [role='gridcell']").nth(1)  # row 1, predicate
    cell.dblclick()
    editor = page.locator("#sd3-tsg-relations textarea, #sd3-tsg-relations input").first
    editor.fill("behind")
    editor.press("Enter")
    regenerate.click()
    page.get_by_text("TSG edited: re-lifted to 3D; drew 4 images from the 3DSG alone").wait_for()
    assert predicates_in_3d_view(page) != view and "behind" in predicates_in_3d_view(page)[0]
    assert page.locator(".sd3-card").first.get_by_text("red cube #0 behind blue sphere #1").count() == 1
    if SHIPPED:
        assert first_image(page) != image


def test_an_example_runs_every_arrow_then_regenerates_with_token_grids(page):
    page.get_by_text("a small green cone is on a large white cube").click()
    page.get_by_text("Example at the default settings; drew 4 images from the sentence and the 3DSG.").wait_for()
    assert page.locator("#sd3-gallery img").count() == 4 and "on" in predicates_in_3d_view(page)[0]
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("show each image's VQ token grid", exact=False).check()
    page.get_by_role("button", name="Regenerate").click()  # the state came back from the cached tables
    page.get_by_text("Nothing edited; drew 4 images from the sentence and the 3DSG.").wait_for()
    page.locator("#sd3-token-grids img").nth(3).wait_for()
