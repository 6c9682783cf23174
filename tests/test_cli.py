"""The command line as a script uses it: `python -m sd3core parse` and its failure paths."""
import json
import subprocess
import sys


def _run(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "sd3core", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_parse_reads_lines_and_prints_one_graph_a_line():
    result = _run(["parse", "--jsonl"], "A red cube is to the left of a blue ball.\n\n")
    assert result.returncode == 0, result.stderr
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["kind"] == "tsg"
    assert [r["predicate"] for r in first["relations"]] == ["to the left of"]
    assert second == {"kind": "tsg", "objects": [], "relations": []}
    assert "line 2: empty text" in result.stderr


def test_parse_refuses_an_overlong_line_with_exit_2():
    result = _run(["parse"], "a" * 1001 + "\nA ball.\n")
    assert result.returncode == 2
    assert "line 1: error: 1001 characters" in result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_unknown_command_is_a_usage_error():
    result = _run(["paint"])
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_lift_prints_3dsgs_and_refuses_a_bad_graph(tmp_path):
    graph = {"kind": "tsg", "objects": [{"id": 0, "label": "ball", "attributes": ["red"]},
                                        {"id": 1, "label": "cube", "attributes": []}],
             "relations": [{"subject": 0, "predicate": "behind", "object": 1}]}
    result = _run(["lift", "-", "--n", "2", "--steps", "4"], json.dumps(graph))
    assert result.returncode == 0, result.stderr
    lifted = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lifted) == 2 and all(g["kind"] == "3dsg" for g in lifted)
    assert all({"subject": 0, "predicate": "behind", "object": 1, "phrase": "behind"} in g["relations"]
               for g in lifted)
    graph["objects"][1]["label"] = "unicorn"
    result = _run(["lift", "-"], json.dumps(graph))
    assert result.returncode == 2 and "objects[1].label: 'unicorn'" in result.stderr
    result = _run(["lift", str(tmp_path / "absent.json")])
    assert result.returncode == 2 and "absent.json" in result.stderr


def test_eval_generation_lifts_with_another_graph_diffusion_when_asked(tiny_world, tiny_checkpoints, tmp_path):
    args = ["eval", "generation", "--data", str(tiny_world), "--split", "test", "--limit", "2"]
    result = _run([*args, "--graph-diffusion", str(tiny_checkpoints)])
    assert result.returncode == 0, result.stderr
    assert "| SD3 (full) |" in result.stdout and '"full_spatial_acc"' in result.stdout
    missing = _run([*args, "--graph-diffusion", str(tmp_path)])  # no manifest there: a clear error
    assert missing.returncode != 0 and "manifest" in missing.stderr and "Traceback" not in missing.stderr


def test_generate_writes_images_and_graphs_and_refuses_bad_candidates(tmp_path):
    args = ["generate", "a red cube to the left of a blue ball", "--n", "2", "--steps", "2", "--out", str(tmp_path)]
    result = _run([*args, "--candidates", "2"])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph3d.json", "sample-0.png", "sample-1.png", "tsg.json"]
    assert json.loads((tmp_path / "graph3d.json").read_text())["kind"] == "3dsg"
    result = _run([*args, "--candidates", "0"])
    assert result.returncode == 2 and "candidates: got 0, expected 1 to 16" in result.stderr
