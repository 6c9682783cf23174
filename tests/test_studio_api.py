"""The launched studio over HTTP with gradio_client: every named endpoint answers, bad input comes
back as a message, and the server keeps serving afterwards."""
import json
import socket

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from demo.hosting import launch
from demo.studio import EXAMPLES, build_studio
from test_demo import GRAPH3D, STEPS, StatedRelationsEngine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tiny_checkpoints, tmp_path_factory):
    studio = build_studio(StatedRelationsEngine(tiny_checkpoints, device="cpu"))
    port = free_port()
    launch(studio, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False,
                     download_files=str(tmp_path_factory.mktemp("downloads")))
    finally:
        studio.close()


def endpoints(client: Client) -> set[str]:
    return set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])


def test_text_to_image_endpoints(client):
    def call(name, *args):
        return client.predict(*args, api_name=name)

    seed = call("/random_seed")
    assert isinstance(seed, int)
    objects, relations, status = call("/parse", "a red cube to the left of a blue sphere")
    assert [row[1] for row in objects["data"]] == ["cube", "sphere"] and status.startswith("Parsed")
    edited = call("/set_tsg_predicate", relations, 1, "behind")
    assert edited["data"][0][1] == "behind"
    figure, objects3d, relations3d, status = call("/lift_tsg", objects, relations, STEPS, seed)
    assert json.loads(figure["plot"])["data"] and len(objects3d["data"]) == 2
    gallery, grids, checks, status = call("/generate_images", objects3d, relations3d, 2, STEPS, 3.0, seed, True)
    assert len(gallery) == 2 and "Image 2" in checks and status.startswith("Drew 2 images from the sentence")
    assert [item["caption"] for item in grids] == ["#1: VQ tokens", "#2: VQ tokens"]
    *_, gallery, grids, checks, status = call("/regenerate_images", objects, edited, objects3d, relations3d,
                                              1, STEPS, 3.0, seed)  # the token-grid setting left at its default
    assert status.startswith("TSG edited: re-lifted") and len(gallery) == 1 and grids == []
    tsg_json, graph3d_json = call("/text_tab_graphs")
    assert json.loads(tsg_json)["kind"] == "tsg" and json.loads(graph3d_json)["kind"] == "3dsg"


def test_image_to_text_endpoints(client):
    boxes, objects, relations, status = client.predict(
        handle_file(str(next(EXAMPLES.glob("*.png")))), api_name="/detect")
    assert status.startswith("Detected")
    objects = {"headers": ["id", "label", "attributes", "x0", "y0", "x1", "y1"],
               "data": [[o.id, o.label, ", ".join(o.attributes), *o.box] for o in GRAPH3D.objects]}
    relations = {"headers": ["subject", "predicate", "object", "phrase"], "data": [[0, "above", 1, ""]]}
    relations = client.predict(relations, 1, "to the left of", api_name="/set_vsg_predicate")
    figure, objects3d, relations3d, status = client.predict(objects, relations, STEPS, 0, api_name="/lift_vsg")
    assert len(objects3d["data"]) == 2
    captions, status = client.predict(objects3d, relations3d, 2, STEPS, 0, api_name="/generate_captions")
    assert captions.startswith("1. “") and status == "Wrote 2 captions."
    relations["data"][0][1] = "to the right of"
    boxes, figure, objects3d, relations3d, captions, status = client.predict(
        objects, relations, objects3d, relations3d, 1, STEPS, 0, api_name="/regenerate_captions")
    assert status.startswith("VSG edited: re-lifted") and len(boxes["annotations"]) == 2
    source, graph3d = client.predict(api_name="/image_tab_graphs")
    assert json.loads(source)["relations"][0]["predicate"] == "to the right of"


def test_inspector_endpoints(client, tmp_path):
    path = tmp_path / "graph.json"
    path.write_text(GRAPH3D.to_json())
    text = client.predict(handle_file(str(path)), api_name="/load_json_file")
    objects, relations, figure3d, figure2d, saved, status = client.predict(text, api_name="/inspect_graph")
    assert json.loads(open(saved).read()) == GRAPH3D.to_dict() and status.startswith("3dsg: 2 objects")
    difference = client.predict((EXAMPLES / "sg2im_cube_sphere.json").read_text(), text,
                                api_name="/compare_graphs")
    assert "adds 1 relation(s)" in difference and "drops 1 relation(s)**\n- cone #2 on cube #0" in difference


def test_every_endpoint_is_exercised_by_these_tests(client):
    assert endpoints(client) == {
        "/random_seed", "/parse", "/set_tsg_predicate", "/lift_tsg", "/generate_images", "/regenerate_images",
        "/text_tab_graphs", "/detect", "/set_vsg_predicate", "/lift_vsg", "/generate_captions",
        "/regenerate_captions", "/image_tab_graphs", "/load_json_file", "/inspect_graph", "/compare_graphs"}


@pytest.mark.parametrize("api_name, args, words", [
    ("/parse", ("x" * 10_000,), "at most 1000"),
    ("/lift_tsg", ({"headers": ["id", "label", "attributes"], "data": [[0, "cube", ""]]},
                   {"headers": ["subject", "predicate", "object", "phrase"], "data": [[0, "beside", 0, ""]]},
                   STEPS, 0), "relation table row 1, column 'predicate'"),
    ("/inspect_graph", ("{oops",), "Not a valid scene graph"),
])
def test_bad_input_comes_back_as_a_message_and_the_server_lives_on(client, api_name, args, words):
    with pytest.raises(AppError, match=words):
        client.predict(*args, api_name=api_name)
    assert isinstance(client.predict(api_name="/random_seed"), int)


def test_a_non_image_upload_is_refused_with_a_message(client, tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    with pytest.raises(AppError, match="not a readable image"):
        client.predict(handle_file(str(fake)), api_name="/detect")
