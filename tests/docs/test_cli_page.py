"""The command-line page shows what the tool really prints.

Its transcripts are not Python, so `test_pages.py` cannot run them. Instead, every `$ unitls`
command on any page must parse, and the transcripts of `docs/cli.md` are compared with real
runs of the same commands: the labels of every summary line must match, and the one-line
errors must match up to the parts that vary (ports, certificate serials).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from markdown_blocks import ROOT, blocks
from unitls._cli import _parser
from world import World

CLI_PAGE = ROOT / "docs" / "cli.md"
UNITLS = [sys.executable, "-m", "unitls"]


def _transcripts() -> dict[str, list[str]]:
    """`$ command` -> the lines printed after it, for every console block of cli.md."""
    found: dict[str, list[str]] = {}
    for block in blocks(CLI_PAGE):
        if block.language != "console":
            continue
        command = None
        for line in block.code.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                found[command] = []
            elif command is not None:
                found[command].append(line)
    return found


def _labels(lines: list[str]) -> list[str]:
    """The part of each summary line before its value: '  TLS version:', 'Connected to'."""
    out = []
    for line in lines:
        if ":" in line and not line.startswith(("hello", "unitls:")):
            out.append(line.split(":", 1)[0])
    return out


def test_every_command_on_every_page_parses() -> None:
    commands = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for block in blocks(page):
            if block.language not in {"sh", "console"}:
                continue
            for line in block.code.splitlines():
                if block.language == "console":
                    if not line.startswith("$ "):
                        continue  # output, not a command
                    line = line[2:]
                for part in line.split("|"):
                    words = shlex.split(part.split("#", 1)[0])
                    if words[:1] == ["unitls"]:
                        commands.append(words)
    assert len(commands) >= 6
    for words in commands:
        _parser().parse_args(words[1:])  # SystemExit (argparse) would fail the test


@pytest.fixture(scope="module")
def serve(docs_world: World) -> Iterator[int]:
    """`unitls serve` with the world's localhost certificate, as on the page, on a free port."""
    files = docs_world.directory
    command = [
        *UNITLS, "serve", "--cert", str(files / "server.crt"), "--key",
        str(files / "server.key"), "--port", "0", "--alpn", "h2,http/1.1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    match = re.fullmatch(r"Listening on 127\.0\.0\.1:(\d+)\n", first)
    assert match, first
    try:
        yield int(match.group(1))
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def _run(command: str, port: int, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    words = shlex.split(command.replace(":8443", f":{port}"))
    assert words[0] == "unitls"
    return subprocess.run(
        [*UNITLS, *words[1:]], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=30
    )


def test_connect_transcript_is_what_connect_prints(serve: int, docs_world: World) -> None:
    transcripts = _transcripts()
    command = "echo hello | unitls connect localhost:8443 --ca ca.pem --alpn h2,http/1.1"
    shown = transcripts[command]
    result = _run(command.split("| ", 1)[1], serve, docs_world.directory, stdin="hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert shown[-1] == "hello"
    assert _labels(result.stderr.splitlines()) == _labels(shown[:-1])
    assert "  ALPN:          h2" in result.stderr.splitlines()
    assert "  ALPN:          h2" in shown


def test_error_transcripts_are_what_connect_prints(serve: int, docs_world: World) -> None:
    transcripts = _transcripts()
    # other-ca.pem on the page: a CA that did not sign the server's certificate.
    (docs_world.directory / "other-ca.pem").write_bytes(
        (docs_world.directory / "example-net.crt").read_bytes()
    )
    for command in (
        "unitls connect localhost:8443 --ca other-ca.pem",
        "unitls connect 127.0.0.1:8443 --ca ca.pem --servername example.net",
    ):
        (shown,) = transcripts[command]
        result = _run(command, serve, docs_world.directory)
        assert result.returncode == 1
        printed = result.stderr.strip().splitlines()[-1]
        assert printed == shown, (printed, shown)


def test_demo_transcript_has_the_lines_demo_prints() -> None:
    (shown_command,) = [c for c in _transcripts() if c == "unitls demo"]
    shown = _transcripts()[shown_command]
    result = subprocess.run([*UNITLS, "demo"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert _labels(printed) == _labels(shown)
    for expected in ("ALPN h2        server says: hello over HTTP/2", "received it back intact"):
        assert any(expected in line for line in printed)
        assert any(expected in line for line in shown)
