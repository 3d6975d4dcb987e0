"""The README's promises stay true: its test command is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = _shell_blocks(quick_start)
    assert len(blocks) == 2
    demo, tests = blocks
    assert demo.endswith("unitls demo")
    assert "pytest" in tests
    pytest_command = tests.split("&&", 1)[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert pytest_command in ci.splitlines()
