"""Find the code blocks of a Markdown page, as Python-Markdown's superfences sees them.

Fenced blocks may be indented (inside admonitions and content tabs) and may carry attributes
(```` ```python title="client.py" ````); both are handled, so no Python block is skipped by
accident. A line `--8<-- "path"` (pymdownx.snippets) inside a block is replaced by that file.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = {"python", "py", "python3"}

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_SNIPPET = re.compile(r"^(?P<indent>[ \t]*)-{1,}8<-{1,}\s+\"(?P<path>[^\"]+)\"\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    page: Path
    line: int  #: 1-based line of the first code line
    language: str
    code: str
    includes: tuple[str, ...]  #: snippet paths pulled in


def language_of(info: str) -> str:
    info = info.strip()
    if info.startswith("{"):  # ``` { .python title="x" }
        match = re.search(r"\.([\w+-]+)", info)
        return match.group(1) if match else ""
    return info.split()[0] if info else ""


def blocks(page: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of `page` (or of `text`, a docstring, named `page` in errors)."""
    lines = (page.read_text() if text is None else text).splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        closing = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        includes: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            line = lines[j]
            line = line[len(indent) :] if line.startswith(indent) else line.lstrip()
            snippet = _SNIPPET.match(line)
            if snippet:
                includes.append(snippet["path"])
                body.extend((ROOT / snippet["path"]).read_text().splitlines())
            else:
                body.append(line)
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{i + 1}: code block never closed")
        language = language_of(opening["info"])
        found.append(Block(page, i + 2, language, "\n".join(body) + "\n", tuple(includes)))
        i = j + 1
    return found


def python_blocks(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.language in PYTHON]


_PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s+#\s(?P<shown>.+)$")
# ruff format wraps a long print: `print(\n    value\n)  # shown`.
_PRINT_OPEN = re.compile(r"^\s*print\([^)]*$")
_CLOSE_COMMENT = re.compile(r"^\s*\)\s+#\s(?P<shown>.+)$")


def claims(code: str) -> list[tuple[int, str]]:
    """(line offset, text) of what each `print(...)  # text` line says it prints."""
    found = []
    in_print = False
    for offset, line in enumerate(code.splitlines()):
        match = _PRINT_COMMENT.match(line) or (in_print and _CLOSE_COMMENT.match(line))
        if match:
            found.append((offset, match["shown"].strip().removesuffix("...").strip()))
        if _PRINT_OPEN.match(line):
            in_print = True
        elif re.match(r"^\s*\)", line):
            in_print = False
    return found


def run(block: Block, namespace: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    """Run one block in `namespace`, then check what its `print(...)  # shown` lines claim.

    A `print(...)` line with a trailing comment states what it prints; that text must appear
    in what the block printed. A trailing `...` marks the rest of the comment as elided.
    """
    # Pad with newlines so a traceback points at the page's own line numbers.
    code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
    exec(code, namespace)
    printed = capsys.readouterr().out
    for offset, shown in claims(block.code):
        assert shown in printed, (
            f"{block.page}:{block.line + offset}: the comment says {shown!r}, "
            f"but the block printed:\n{printed}"
        )
