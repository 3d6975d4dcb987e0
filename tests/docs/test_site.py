"""The documentation site: built strictly, served on 127.0.0.1, read in a real headless Chromium.

The browser is Debian's `chromium` (`/usr/bin/chromium`, installed by `.ci/run`), driven by
Playwright for Python, which is told where it is instead of downloading its own. Every page of
the nav is opened; a page fails on a console error, an uncaught exception, a request that fails
or answers >= 400, or a mermaid diagram that did not render. The search must find `TLSBuffer`,
and the API reference must have an entry for every public name.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mkdocs.config import load_config

import unitls
import unitls.insecure
import unitls.insecure.openssl
import unitls.openssl
from helpers import serve_http
from markdown_blocks import ROOT, blocks

CHROMIUM = os.environ.get("UNITLS_CHROMIUM", "/usr/bin/chromium")
# Needed here: root in a container (no sandbox), no GPU, and no phoning home (the machine's
# closed network refuses those connections, which would show up as console errors).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

REFERENCE = {
    "reference/unitls/": ("unitls", unitls.__all__),
    "reference/openssl/": ("unitls.openssl", unitls.openssl.__all__),
    "reference/insecure/": ("unitls.insecure", unitls.insecure.__all__),
}


def _nav_pages(nav: list[Any]) -> Iterator[str]:
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield value


def _url_path(page: str) -> str:
    stem = page.removesuffix(".md")
    if stem == "index":
        return ""
    return stem.removesuffix("/index").removesuffix("index") + "/"


NAV = list(_nav_pages(load_config(str(ROOT / "mkdocs.yml"))["nav"]))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict`, as CI runs it; any warning fails the build and this test."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with serve_http(functools.partial(Quiet, directory=str(site))) as url:
        yield url + "/"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does this), "
        "or point UNITLS_CHROMIUM at a Chromium binary"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url)
    # Material draws each mermaid diagram into a *closed* shadow root; open them all, so the
    # test can see whether an SVG was drawn. Nothing else on the site uses shadow DOM.
    context.add_init_script(
        "const attach = Element.prototype.attachShadow;"
        "Element.prototype.attachShadow = function (init) {"
        "  return attach.call(this, {...init, mode: 'open'}); };"
    )
    page = context.new_page()
    page.problems = []  # type: ignore[attr-defined]

    def on_console(message: Any) -> None:
        if message.type == "error":
            page.problems.append(f"console error: {message.text} ({message.location})")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            page.problems.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page.problems.append(f"uncaught: {exc}"))
    page.on("requestfailed", lambda r: page.problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", on_response)
    try:
        yield page
    finally:
        context.close()


def test_nav_lists_every_page_once() -> None:
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(NAV) == pages


@pytest.mark.parametrize("nav_page", NAV)
def test_page_loads_cleanly(page: Any, base_url: str, nav_page: str) -> None:
    response = page.goto(_url_path(nav_page), wait_until="load")
    assert response is not None
    assert response.status == 200, nav_page
    title = page.locator("article h1").first.inner_text()
    assert title, nav_page
    assert "being written" not in title.lower(), title
    # Material replaces each ```mermaid block (a <pre class="mermaid">) with a <div> once mermaid
    # has drawn it; a diagram that fails to parse stays a <pre>. Count them from the source.
    expected = sum(b.language == "mermaid" for b in blocks(ROOT / "docs" / nav_page))
    if expected:
        page.wait_for_function(
            f"() => document.querySelectorAll('div.mermaid').length === {expected}",
            timeout=15_000,
        )
    diagrams = page.locator("div.mermaid")
    for i in range(diagrams.count()):
        # Wait for the diagram's SVG, drawn with real size (a syntax error draws none).
        page.wait_for_function(
            "el => { const svg = el.shadowRoot && el.shadowRoot.querySelector('svg');"
            " return svg && svg.getBoundingClientRect().height > 40; }",
            arg=diagrams.nth(i).element_handle(),
            timeout=15_000,
        )
    page.wait_for_load_state("networkidle")
    assert page.problems == [], page.problems


def test_every_nav_link_leads_to_a_page(page: Any) -> None:
    page.goto("", wait_until="load")
    hrefs = page.eval_on_selector_all(
        "nav.md-nav--primary a.md-nav__link[href]", "els => els.map(e => e.href)"
    )
    assert len({h.split("#")[0] for h in hrefs}) >= len(NAV)
    for href in sorted(set(hrefs)):
        response = page.request.get(href)
        assert response.status == 200, href
    assert page.problems == [], page.problems


def test_search_finds_tlsbuffer(page: Any) -> None:
    page.goto("", wait_until="load")
    page.keyboard.press("/")  # Material's shortcut focuses the search box
    search = page.locator("input.md-search__input")
    search.press_sequentially("TLSBuffer", delay=30)  # as a reader types: key events
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15_000)
    assert results.count() >= 3
    texts = " ".join(results.all_inner_texts())
    assert "TLSBuffer" in texts
    # The reference entry is among the hits, and following a hit opens a page.
    links = page.eval_on_selector_all(
        ".md-search-result__item a", "els => els.map(e => e.getAttribute('href'))"
    )
    assert any("reference/unitls" in link for link in links), links
    results.first.locator("a").first.click()
    page.wait_for_load_state("load")
    assert page.locator("article h1").count() == 1
    assert page.problems == [], page.problems


@pytest.mark.parametrize("url", sorted(REFERENCE))
def test_reference_has_every_public_name(page: Any, url: str) -> None:
    module, names = REFERENCE[url]
    page.goto(url, wait_until="load")
    missing = [n for n in names if page.locator(f"[id='{module}.{n}']").count() != 1]
    assert missing == [], f"{url} has no entry for {missing}"
    assert page.problems == [], page.problems


def test_integrations_reference_has_every_public_name(page: Any) -> None:
    import importlib

    page.goto("reference/integrations/", wait_until="load")
    for short in ("httpx", "httpcore", "ssl_context", "urllib3", "http_client"):
        module = importlib.import_module(f"unitls_integrations.{short}")
        for name in module.__all__:
            anchor = f"unitls_integrations.{short}.{name}"
            assert page.locator(f"[id='{anchor}']").count() == 1, anchor
    assert page.problems == [], page.problems


def test_performance_plot_is_drawn_from_the_results(page: Any) -> None:
    import json

    page.goto("performance/", wait_until="load")
    plot = page.locator("svg.bench-plot")
    assert plot.count() == 1
    box = plot.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 200
    http = json.loads((ROOT / "bench" / "results-http.json").read_text())
    bars = plot.locator("rect")
    assert bars.count() >= len(http["summary"])
    labels = " ".join(plot.locator("text").all_text_contents())
    for row in http["summary"]:
        assert row["row"] in labels
        assert f"{row['ratio']:.2f}x" in labels
    assert page.problems == [], page.problems
