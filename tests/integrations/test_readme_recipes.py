"""The README's HTTP recipes, run as written against real hypercorn and nginx servers.

Only the address and the CA file change: `localhost:8443` becomes the test server's
port and `"ca.pem"` its CA file. The blocks are read from README.md, so the recipes
cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

import pytest

from servers import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipes() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Your HTTP stack over unitls", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def _adapt(code: str, server: Server) -> str:
    code = code.replace("localhost:8443", f"localhost:{server.port}")
    code = code.replace('"localhost", 8443', f'"localhost", {server.port}')
    return code.replace('"ca.pem"', repr(str(server.ca_file)))


def test_the_readme_has_the_three_recipes() -> None:
    recipes = _recipes()
    assert len(recipes) == 3
    assert "httpx" in recipes[0]
    assert "urllib3" in recipes[1]
    assert "requests" in recipes[1]
    assert "http_client" in recipes[2]
    assert "urllib.request" in recipes[2]


def test_the_readme_recipes_run(server: Server) -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in _recipes():  # later recipes use `config` from the first, as written
            exec(compile(_adapt(code, server), str(README), "exec"), namespace)
        asyncio.run(namespace["fetch"]())  # type: ignore[operator]
        namespace["session"].close()  # type: ignore[attr-defined]
        namespace["pool"].clear()  # type: ignore[attr-defined]
        namespace["connection"].close()  # type: ignore[attr-defined]
    assert out.getvalue().split() == ["HTTP/2", "200", "200", "200", "200", "HTTP/2"]


@pytest.mark.parametrize("code", _recipes(), ids=["httpx", "urllib3-requests", "http-client"])
def test_the_recipes_use_only_public_names(code: str) -> None:
    for module in re.findall(r"from (unitls\S*) import", code):
        assert not any(part.startswith("_") for part in module.split("."))
