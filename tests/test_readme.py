"""The README's Python quickstart runs as written."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_python_examples_run(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "runs" / "credit" / "metrics.json").is_file()
    printed = capsys.readouterr().out
    assert "roc_auc" in printed
    assert "'Seniority'" in printed


def test_readme_commands_are_the_ci_commands():
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = "./scripts/setup.sh dev && .venv/bin/python -m pytest"
    assert test_command in README.read_text()
    assert test_command in ci
