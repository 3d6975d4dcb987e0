"""The arrows only point down (DESIGN.md "Layout"): the core loads no backend, no socket or
TLS code and no HTTP library; only the OpenSSL packages import `OpenSSL`; nothing in the
core imports `unitls.insecure`.

Two checks back each other up: what a fresh interpreter really loads (`sys.modules`),
and a static scan of every import statement under `src/unitls` (including imports inside
functions and `TYPE_CHECKING` blocks, which the first check cannot see).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "unitls"

# Modules the core must never load, by exact name or as a package prefix.
FORBIDDEN_AT_IMPORT = (
    # the backend and its bindings
    "OpenSSL",
    "cryptography",
    "cffi",
    "_cffi_backend",
    "unitls.openssl",
    "unitls.insecure",
    "unitls._cli",
    # HTTP libraries and async frameworks
    "httpcore",
    "httpx",
    "urllib3",
    "h11",
    "h2",
    "hpack",
    "anyio",
    "sniffio",
    "trio",
    "unitls_integrations",
    # stdlib networking and TLS: the core does no I/O. (`_socket`, the C module, is
    # loaded by typing_extensions on some versions and performs no I/O by itself.)
    "ssl",
    "_ssl",
    "socket",
    "select",
    "selectors",
    "asyncio",
    "http",
    "http.client",
    "urllib.request",
    # test-only dependencies
    "trustme",
    "hypothesis",
    "pytest",
)

HTTP_LIBRARIES = ("httpcore", "httpx", "urllib3", "h11", "h2", "anyio", "requests", "aiohttp")
HTTP_STDLIB = ("http.client", "http.server", "urllib.request")

_PROBE = """
import json, sys, sysconfig
before = set(sys.modules)
for name in sys.argv[1:]:
    __import__(name)
loaded = {
    name: getattr(module, "__file__", None)
    for name, module in sys.modules.items()
    if name not in before
}
paths = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
print(json.dumps({"loaded": loaded, "site": paths}))
"""


def load(*modules: str) -> tuple[dict[str, str | None], list[str]]:
    """Import `modules` in a fresh interpreter (warnings are errors there too) and
    return the modules that appeared, with their files, and the site-packages paths."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _PROBE, *modules],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return data["loaded"], data["site"]


def matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# -- what `import unitls` loads -------------------------------------------------------------------


@pytest.mark.parametrize("modules", [("unitls",), ("unitls", "unitls.insecure")])
def test_importing_the_core_loads_no_backend_io_or_http(modules):
    loaded, _ = load(*modules)
    assert "unitls" in loaded
    bad = sorted(name for name in loaded if matches(name, FORBIDDEN_AT_IMPORT))
    allowed = () if "unitls.insecure" not in modules else ("unitls.insecure",)
    bad = [name for name in bad if name not in allowed]
    assert bad == []


def test_the_core_needs_no_third_party_package_but_typing_extensions():
    loaded, site = load("unitls", "unitls.insecure")
    third_party = sorted(
        name.partition(".")[0]
        for name, path in loaded.items()
        if path and any(Path(path).is_relative_to(s) for s in site)
    )
    # unitls itself sits in site-packages when installed normally (not editable).
    assert set(third_party) - {"unitls"} <= {"typing_extensions"}, third_party


def test_unitls_modules_loaded_by_the_core_are_core_modules():
    loaded, _ = load("unitls")
    ours = sorted(name for name in loaded if name == "unitls" or name.startswith("unitls."))
    assert ours == [
        "unitls",
        "unitls._configuration",
        "unitls._credentials",
        "unitls._enums",
        "unitls._errors",
        "unitls._protocols",
    ]


def test_the_backends_do_load_openssl_and_warn_about_nothing_at_import():
    # The control for the checks above (the probe would see OpenSSL if it were loaded),
    # and: importing the insecure backend warns about nothing until it is used.
    loaded, _ = load("unitls.openssl", "unitls.insecure.openssl")
    assert "OpenSSL.SSL" in loaded
    assert not any(matches(name, ("httpcore", "httpx", "urllib3", "h11", "h2")) for name in loaded)


# -- the static scan ------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module an import statement in `path` may load, relative imports resolved.

    `from pkg import name` counts as both `pkg` and `pkg.name` (it may be a submodule).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base = ".".join(base_parts[: len(base_parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


FILES = sorted(SRC.rglob("*.py"))
OPENSSL_DIRS = (SRC / "openssl", SRC / "insecure" / "openssl")
# The command line is a consumer of the library, not part of the core.
CONSUMERS = (SRC / "_cli.py", SRC / "__main__.py")


def rel(path: Path) -> str:
    return path.relative_to(SRC.parent).as_posix()


def test_the_scan_sees_every_source_file_and_resolves_relative_imports():
    names = {rel(p) for p in FILES}
    assert {"unitls/__init__.py", "unitls/openssl/_context.py"} <= names
    assert {"unitls/insecure/__init__.py", "unitls/insecure/openssl/__init__.py"} <= names
    assert "unitls._configuration" in imports(SRC / "openssl" / "_context.py")
    assert "unitls.openssl" in imports(SRC / "insecure" / "openssl" / "__init__.py")
    assert "OpenSSL.SSL" in imports(SRC / "openssl" / "_buffer.py")


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_only_the_openssl_packages_import_openssl(path):
    if any(path.is_relative_to(d) for d in OPENSSL_DIRS):
        return
    assert not [m for m in imports(path) if matches(m, ("OpenSSL",))]


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_nothing_imports_an_http_library(path):
    found = imports(path)
    assert not [m for m in found if matches(m, HTTP_LIBRARIES + HTTP_STDLIB)]
    assert not [m for m in found if matches(m, ("unitls_integrations",))]


CORE_FILES = [
    p for p in FILES if not any(p.is_relative_to(d) for d in OPENSSL_DIRS) and p not in CONSUMERS
]


@pytest.mark.parametrize("path", CORE_FILES, ids=rel)
def test_core_modules_import_no_backend_and_no_io(path):
    forbidden = (
        "OpenSSL",
        "cryptography",
        "cffi",
        "unitls.openssl",
        "ssl",
        "socket",
        "select",
        "selectors",
        "asyncio",
    )
    assert not [m for m in imports(path) if matches(m, forbidden)]


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_only_the_insecure_package_and_the_cli_import_insecure(path):
    if path.is_relative_to(SRC / "insecure") or path == SRC / "_cli.py":
        return
    assert not [m for m in imports(path) if matches(m, ("unitls.insecure",))]


def test_the_cli_imports_insecure_only_when_asked():
    tree = ast.parse((SRC / "_cli.py").read_text(encoding="utf-8"))
    top_level = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not [m for m in top_level if "insecure" in m]
