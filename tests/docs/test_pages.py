"""Every Python code block on every documentation page runs, so the docs cannot rot.

The blocks of a page run in order, in one namespace (a page reads as one program), as
`__main__`, in the loopback world of `world.py`, with warnings as errors like every test.
A block that only includes a `docs/examples/` file is run by `test_examples.py` instead.

Output shown in the docs is checked too: a `print(...)` line with a trailing comment states
what it prints (`print(response.http_version)  # HTTP/2`), and that text must appear in what
the block printed. A trailing `...` marks the rest as elided.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from markdown_blocks import ROOT, blocks, python_blocks, run

DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))


def _runnable(page: Path) -> list:
    return [
        block
        for block in python_blocks(page)
        if not (block.includes and all(p.startswith("docs/examples/") for p in block.includes))
    ]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if _runnable(p)],
    ids=lambda p: str(p.relative_to(DOCS)),
)
@pytest.mark.usefixtures("in_docs_world")
def test_python_blocks_run(
    page: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    monkeypatch.setattr(sys, "argv", [str(page)])
    for block in _runnable(page):
        run(block, namespace, capsys)


def test_every_page_has_been_looked_at() -> None:
    """A page with no runnable Python is fine, but a `py`/`pycon` block would go unrun."""
    for page in PAGES:
        for block in blocks(page):
            assert block.language not in {"pycon", "python-repl"}, (
                f"{page}:{block.line}: interactive sessions are not run; write a python block"
            )
