"""Tables and a plot from the benchmarks' own JSON output, for the documentation site.

    python bench/report.py [bench/results-tls.json] [bench/results-http.json]

prints the Markdown the "Performance" page shows. The docs build calls the same functions
(`docs/hooks.py`), so the page is always the committed results, never numbers typed by hand.
Both inputs are what `bench_tls.py --json` and `http.py --json` write.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TLS_RESULTS = HERE / "results-tls.json"
HTTP_RESULTS = HERE / "results-http.json"


def load(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)  # type: ignore[no-any-return]


def _ratio(value: float, low: float, high: float) -> str:
    return f"**{value:.2f}x** ({low:.2f}-{high:.2f})"


def tls_table(result: dict[str, Any]) -> str:
    """The TLS-layer rows: medians per implementation and unitls / stdlib per repetition."""
    lines = [
        "| Row | stdlib `ssl` | raw pyOpenSSL | unitls | unitls / stdlib | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for e in result["summary"]:
        fmt = "{:,.1f}" if e["unit"] == "KiB" else "{:,.0f}"
        lower_is_better = e["unit"] == "KiB"
        if e["target"] is None:
            target = "—"
        else:
            sign = "≤" if lower_is_better else "≥"
            verdict = "met" if e["target_met"] else "**not met**"
            target = f"{sign} {e['target']:.2f}x, {verdict}"
        cells = [
            f"{e['title']} ({e['unit']})",
            fmt.format(e["stdlib"]),
            fmt.format(e["pyopenssl"]),
            fmt.format(e["unitls"]),
            _ratio(e["unitls_ratio"], *e["unitls_ratio_range"]),
            target,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def http_table(result: dict[str, Any]) -> str:
    """The HTTP rows: each stack over its default TLS and over unitls, same server, same run."""
    lines = [
        "| Server | Client | Measure | default TLS | unitls | unitls / default |",
        "|---|---|---|---:|---:|---:|",
    ]
    for e in result["summary"]:
        server, client, version, *measure = e["row"].split(" ")
        cells = [
            server,
            f"{client} {version}",
            " ".join(measure),
            f"{e['default']:,.0f}",
            f"{e['unitls']:,.0f}",
            _ratio(e["ratio"], e["min_ratio"], e["max_ratio"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment(result: dict[str, Any]) -> str:
    """One line per environment entry, as a Markdown list."""
    return "\n".join(f"- {key}: {value}" for key, value in result["environment"].items())


def _bars(tls: dict[str, Any], http: dict[str, Any]) -> list[tuple[str, float, float, float, str]]:
    """(label, median ratio, lowest, highest, group) for every throughput row."""
    bars = []
    for e in tls["summary"]:
        if e["unit"] == "KiB":  # memory: lower is better, not a speed; it has its own table row
            continue
        low, high = e["unitls_ratio_range"]
        bars.append((e["title"], e["unitls_ratio"], low, high, "TLS layer vs stdlib ssl"))
    for e in http["summary"]:
        bars.append((e["row"], e["ratio"], e["min_ratio"], e["max_ratio"], "HTTP vs default TLS"))
    return bars


def plot_svg(tls: dict[str, Any], http: dict[str, Any]) -> str:
    """A horizontal bar chart of unitls / baseline per row, whiskers for the per-round range.

    Plain SVG, no plotting library: the docs build needs nothing but the JSON. Colours come
    from CSS variables of the Material theme, so the plot follows light and dark mode.
    """
    bars = _bars(tls, http)
    label_w, plot_w, row_h, top, pad = 260, 420, 22, 30, 10
    scale_max = max(1.6, max(high for _, _, _, high, _ in bars) + 0.1)
    height = top + row_h * len(bars) + 40

    def x(ratio: float) -> float:
        return label_w + plot_w * ratio / scale_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bench-plot" role="img" '
        f'viewBox="0 0 {label_w + plot_w + 60} {height}" width="100%" '
        f'font-family="sans-serif" font-size="12">',
        "<title>unitls throughput relative to the baseline in the same run "
        "(1.0 = as fast; whiskers: lowest and highest round)</title>",
        "<style>.bench-plot text{fill:var(--md-default-fg-color,#000)}"
        ".bench-plot .tls{fill:var(--md-primary-fg-color,#3f51b5)}"
        ".bench-plot .http{fill:var(--md-accent-fg-color,#526cfe);opacity:.75}"
        ".bench-plot line{stroke:var(--md-default-fg-color,#000)}</style>",
    ]
    for tick in [t / 10 for t in range(0, int(scale_max * 10) + 1, 2)]:
        tx = x(tick)
        dash = "" if tick == 1.0 else ' stroke-dasharray="2,3" opacity=".3"'
        out.append(f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 30}"{dash}/>')
        out.append(f'<text x="{tx:.1f}" y="{height - 14}" text-anchor="middle">{tick:.1f}x</text>')
    for i, (label, ratio, low, high, group) in enumerate(bars):
        y = top + i * row_h
        css = "tls" if group.startswith("TLS") else "http"
        out.append(
            f'<text x="{label_w - pad}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
        )
        out.append(
            f'<rect class="{css}" x="{label_w}" y="{y + 4}" width="{x(ratio) - label_w:.1f}" '
            f'height="{row_h - 8}"><title>{html.escape(label)}: {ratio:.2f}x '
            f"({low:.2f}-{high:.2f})</title></rect>"
        )
        mid = y + row_h / 2
        out.append(f'<line x1="{x(low):.1f}" y1="{mid}" x2="{x(high):.1f}" y2="{mid}"/>')
        out.append(f'<text x="{x(high) + 6:.1f}" y="{y + 15}">{ratio:.2f}x</text>')
    out.append(
        f'<text x="{label_w}" y="{top - 12}">unitls ÷ baseline, median of rounds '
        "(TLS rows: stdlib ssl in memory; HTTP rows: the same client over its default TLS)</text>"
    )
    out.append("</svg>")
    # One line: Python-Markdown keeps a raw HTML block intact only without blank lines.
    return "".join(out)


def main(argv: list[str]) -> int:
    tls = load(Path(argv[0]) if argv else TLS_RESULTS)
    http = load(Path(argv[1]) if len(argv) > 1 else HTTP_RESULTS)
    print(tls_table(tls), http_table(http), sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
