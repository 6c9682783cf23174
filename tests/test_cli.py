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
