"""mkdocs hooks: the vendored mermaid runtime, and the performance page's tables and plot.

Performance: `docs/performance.md` holds `<!-- bench:NAME -->` markers that become the tables
and the plot `bench/report.py` renders from `bench/results-tls.json` and
`bench/results-http.json`, the committed output of the two benchmarks.

Mermaid: Material for MkDocs renders ```` ```mermaid ```` blocks with mermaid 11, which it loads
from unpkg.com unless a `mermaid` global already exists. The site must work offline (readers
behind firewalls, CI's browser test), so the build vendors mermaid itself: the release pinned
below is fetched once from the npm registry, checked against its published SHA-512, and cached
in `docs/assets/vendor/` (git-ignored), which `extra_javascript` loads.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.pages import Page

DOCS = Path(__file__).resolve().parent

MERMAID_VERSION = "11.17.2"
MERMAID_TARBALL = f"https://registry.npmjs.org/mermaid/-/mermaid-{MERMAID_VERSION}.tgz"
MERMAID_SHA512 = (
    "V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
)
MERMAID_JS = DOCS / "assets" / "vendor" / "mermaid.min.js"


def vendor_mermaid(target: Path = MERMAID_JS) -> Path:
    """Make sure `target` holds the pinned mermaid runtime; download it if missing."""
    marker = target.with_suffix(".version")
    if target.exists() and marker.exists() and marker.read_text() == MERMAID_VERSION:
        return target
    try:
        with urllib.request.urlopen(MERMAID_TARBALL, timeout=60) as response:
            tarball = response.read()
    except OSError as exc:
        raise PluginError(
            f"cannot download mermaid {MERMAID_VERSION} from {MERMAID_TARBALL} ({exc}); "
            f"without network, put its dist/mermaid.min.js at {target} and write "
            f"{MERMAID_VERSION!r} to {marker}"
        ) from exc
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != MERMAID_SHA512:
        raise PluginError(f"{MERMAID_TARBALL}: SHA-512 {digest} is not the pinned {MERMAID_SHA512}")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        member = archive.extractfile("package/dist/mermaid.min.js")
        assert member is not None
        script = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(script)
    marker.write_text(MERMAID_VERSION)
    return target


def on_pre_build(config: object) -> None:
    vendor_mermaid()


# The performance page: `<!-- bench:NAME -->` markers become the output of bench/report.py
# over the committed results, so the page can only show what a benchmark run printed.
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "bench"))
import report  # noqa: E402


def bench_sections() -> dict[str, str]:
    tls, http = report.load(report.TLS_RESULTS), report.load(report.HTTP_RESULTS)
    return {
        "tls-table": report.tls_table(tls),
        "tls-environment": report.environment(tls),
        "http-table": report.http_table(http),
        "http-environment": report.environment(http),
        "plot": report.plot_svg(tls, http),
    }


_MARKER = re.compile(r"<!-- bench:([a-z-]+) -->")


def on_page_markdown(markdown: str, page: Page, **kwargs: object) -> str:
    if page.file.src_uri != "performance.md":
        return markdown
    sections = bench_sections()

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in sections:
            raise PluginError(f"performance.md: unknown marker {match.group(0)}")
        return sections[match.group(1)]

    rendered, count = _MARKER.subn(replace, markdown)
    if count != len(sections):
        raise PluginError(f"performance.md: {count} bench markers for {len(sections)} sections")
    return rendered
