"""The README's Python example runs as written (in a temporary folder)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_commands():
    lines = [line.strip() for line in README.read_text().splitlines() if line.strip()]
    assert lines[1].startswith("make demo") and lines[2].startswith("make test")


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 16
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - executing our own docs
    result = namespace["result"]
    assert result.final["val/acc"] > 0.9
    assert (tmp_path / "runs" / "digits" / "metrics.jsonl").exists()
    assert "val/acc" in capsys.readouterr().out
