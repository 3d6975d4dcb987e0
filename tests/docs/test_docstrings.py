"""The examples in public docstrings run: the API reference shows them, so they are docs too.

Each public module's docstring (and any public class's or function's) may hold ```python
blocks; they run like a page's blocks (`test_pages.py`), in the loopback world.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest

from markdown_blocks import PYTHON, blocks, run

MODULES = [
    "unitls",
    "unitls.openssl",
    "unitls.insecure",
    "unitls.insecure.openssl",
    "unitls_integrations.httpx",
    "unitls_integrations.httpcore",
    "unitls_integrations.ssl_context",
    "unitls_integrations.urllib3",
    "unitls_integrations.http_client",
]


def _documented(module: ModuleType) -> list[tuple[str, str]]:
    """(qualified name, docstring) of the module and of every public name it exports."""
    found = [(module.__name__, inspect.getdoc(module) or "")]
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found.append((f"{module.__name__}.{name}", inspect.getdoc(obj) or ""))
            for member_name, member in vars(obj).items() if inspect.isclass(obj) else ():
                if not member_name.startswith("_") and (inspect.isfunction(member)):
                    doc = inspect.getdoc(member) or ""
                    found.append((f"{module.__name__}.{name}.{member_name}", doc))
    return found


EXAMPLES = [
    (qualname, doc)
    for module in MODULES
    for qualname, doc in _documented(importlib.import_module(module))
    if any(b.language in PYTHON for b in blocks(Path(qualname), doc))
]


def test_the_public_docstrings_have_examples() -> None:
    assert len(EXAMPLES) >= len(MODULES) - 1  # `unitls` itself points at unitls.openssl


@pytest.mark.parametrize(("qualname", "doc"), EXAMPLES, ids=[q for q, _ in EXAMPLES])
@pytest.mark.usefixtures("in_docs_world")
def test_docstring_examples_run(
    qualname: str, doc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in blocks(Path(f"<docstring of {qualname}>"), doc):
        if block.language in PYTHON:
            run(block, namespace, capsys)
