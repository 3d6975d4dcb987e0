"""HTTP benchmark: requests/s through unitls' adapters vs each library's default TLS stack.

    python bench/http.py [--quick] [--rounds N] [--requests N] [--json out.json]

Starts real servers on 127.0.0.1 (hypercorn and nginx, the same launchers the
integration tests use; certificates from a throwaway trustme CA), then, for each
server, measures sequential GETs over one kept-alive connection:

- httpx over HTTP/1.1 and over HTTP/2: `httpx.Client(verify=<ssl.SSLContext>)` (httpx's
  default transport, stdlib `ssl`) vs `httpx.Client(transport=HTTPTransport(...))` from
  `unitls_integrations.httpx`;
- urllib3 (HTTP/1.1): `PoolManager(ssl_context=<ssl.SSLContext>)` vs
  `PoolManager(ssl_context=unitls_integrations.ssl_context.SSLContext(...))`;
- a bulk row per stack: GET /static/big.bin (10 MiB) a few times, in MB/s.

Both sides of a row verify the server's certificate and hostname against the same CA.
The two flavours of a stack alternate inside each round (the order flips every
round), so that drift on a shared machine hits both alike; each round gives a ratio
(unitls / default) and the median of the per-round ratios is reported. On a machine
with two or more cores the servers are pinned to the last core and this client to
the first, so that client and server do not take turns on one core. Nothing here is
a test: no assertions on speed, only a table (bench/README.md holds the last one).
"""

from __future__ import annotations

import sys
from pathlib import Path

# ruff: noqa: E402 (imports follow the sys.path fix below)
# This file is named like the stdlib's `http` package, and Python puts the script's own
# directory first on sys.path: drop it before anything imports `http.client`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import contextlib
import json
import os
import platform
import signal
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import OpenSSL
import trustme
import urllib3

sys.path.insert(0, str(_HERE.parent / "tests" / "integrations"))
from servers import BIG_SIZE, Server, nginx_binary, start_hypercorn, start_nginx, stop_process
from unitls_integrations.httpx import HTTPTransport
from unitls_integrations.ssl_context import SSLContext

Fetch = Callable[[str], int]  # GET a URL, return the body length


def pin(pid: int, cpus: set[int]) -> None:
    """Keep a process on `cpus`, so client and server do not take turns on one core."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def servers(directory: Path) -> Iterator[list[Server]]:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    hyper, hyper_process = start_hypercorn(directory / "hypercorn", ca, leaf)
    nginx, _mtls, nginx_process = start_nginx(directory / "nginx", ca, leaf)
    # Both servers are single processes (hypercorn --workers 0, nginx master_process
    # off): they share the last core, and this client gets the first to itself.
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    for process in (hyper_process, nginx_process):
        pin(process.pid, {cores[-1]})
    pin(0, {cores[0]})
    try:
        yield [hyper, nginx]
    finally:
        stop_process(hyper_process)
        stop_process(nginx_process, signal.SIGQUIT)


def httpx_client(server: Server, *, unitls: bool, http2: bool) -> tuple[Fetch, Callable[[], None]]:
    if unitls:
        transport = HTTPTransport(server.configuration(), http1=not http2, http2=http2)
        client = httpx.Client(transport=transport)
    else:
        context = ssl.create_default_context(cafile=str(server.ca_file))
        client = httpx.Client(verify=context, http1=not http2, http2=http2)
    expected = "HTTP/2" if http2 else "HTTP/1.1"

    def fetch(url: str) -> int:
        response = client.get(url)
        if response.status_code != 200 or response.http_version != expected:
            raise RuntimeError(f"{url}: {response.status_code} {response.http_version}")
        return len(response.content)

    return fetch, client.close


def urllib3_client(server: Server, *, unitls: bool) -> tuple[Fetch, Callable[[], None]]:
    context: Any
    if unitls:
        context = SSLContext(server.configuration())
    else:
        context = ssl.create_default_context(cafile=str(server.ca_file))
    pool = urllib3.PoolManager(ssl_context=context, maxsize=1)

    def fetch(url: str) -> int:
        response = pool.request("GET", url)
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status}")
        return len(response.data)

    return fetch, pool.clear


STACKS = {
    "httpx h1": lambda server, unitls: httpx_client(server, unitls=unitls, http2=False),
    "httpx h2": lambda server, unitls: httpx_client(server, unitls=unitls, http2=True),
    "urllib3 h1": lambda server, unitls: urllib3_client(server, unitls=unitls),
}


def timed(fetch: Fetch, url: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        fetch(url)
    return time.perf_counter() - start


def run_stack(
    server: Server, stack: str, args: argparse.Namespace, rows: dict[str, dict[str, list[float]]]
) -> None:
    """Round-robin the default and the unitls client of one stack against one server."""
    make = STACKS[stack]
    clients = {flavour: make(server, flavour == "unitls") for flavour in ("default", "unitls")}
    small_url, big_url = server.url + "/", server.url + "/static/big.bin"
    small_row = rows.setdefault(f"{server.name} {stack} req/s", {})
    big_row = rows.setdefault(f"{server.name} {stack} 10 MiB MB/s", {})
    try:
        for fetch, _close in clients.values():  # connect, handshake, warm up
            for _ in range(50):
                fetch(small_url)
            if fetch(big_url) != BIG_SIZE:
                raise RuntimeError("short download")
        for round_no in range(args.rounds):
            order = list(clients) if round_no % 2 == 0 else list(reversed(clients))
            for flavour in order:
                fetch = clients[flavour][0]
                small = args.requests / timed(fetch, small_url, args.requests)
                big = args.downloads * BIG_SIZE / 1e6 / timed(fetch, big_url, args.downloads)
                small_row.setdefault(flavour, []).append(small)
                big_row.setdefault(flavour, []).append(big)
            print(f"  {server.name} {stack}: round {round_no + 1}/{args.rounds}", file=sys.stderr)
    finally:
        for _fetch, close in clients.values():
            close()


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as running:
        for server in running:
            for stack in STACKS:
                run_stack(server, stack, args, rows)
    return rows


def summarize(rows: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    table = []
    for name, values in rows.items():
        ratios = [u / d for u, d in zip(values["unitls"], values["default"], strict=True)]
        table.append(
            {
                "row": name,
                "default": statistics.median(values["default"]),
                "unitls": statistics.median(values["unitls"]),
                "ratio": statistics.median(ratios),
                "min_ratio": min(ratios),
                "max_ratio": max(ratios),
            }
        )
    return table


def nginx_version() -> str:
    result = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().rpartition("/")[2] or "?"


def environment() -> dict[str, str]:
    from importlib.metadata import version

    import h2
    import httpcore

    return {
        "python": platform.python_version(),
        "stdlib ssl": ssl.OPENSSL_VERSION,
        "pyOpenSSL": f"{OpenSSL.__version__} ({OpenSSL.SSL.OpenSSL_version(0).decode()})",
        "httpx": httpx.__version__,
        "httpcore": httpcore.__version__,
        "h2": h2.__version__,
        "urllib3": urllib3.__version__,
        "hypercorn": version("hypercorn"),
        "nginx": nginx_version(),
        "cpus": f"{os.cpu_count()} (server pinned to the last, client to the first)",
    }


def render(table: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.rounds} rounds x {args.requests} GETs of / and {args.downloads} x 10 MiB "
        "per stack; medians; ratio = median of per-round unitls/default (target >= 0.95)",
        "",
        "| Row | default | unitls | unitls / default | range |",
        "|---|---:|---:|---:|---|",
    ]
    for row in table:
        lines.append(
            f"| {row['row']} | {row['default']:,.0f} | {row['unitls']:,.0f} | "
            f"{row['ratio']:.2f}x | {row['min_ratio']:.2f} to {row['max_ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Many short rounds rather than a few long ones: each round compares the two
    # flavours back to back, so slow drift on a shared machine cancels out.
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=300, help="small GETs per stack per round")
    parser.add_argument("--downloads", type=int, default=10, help="10 MiB GETs per stack per round")
    parser.add_argument("--quick", action="store_true", help="3 rounds x 200 GETs x 1 download")
    parser.add_argument("--json", type=Path, help="write environment, raw values and summary here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests, args.downloads = 3, 200, 1
    env = environment()
    for key, value in env.items():
        print(f"{key}: {value}")
    rows = measure(args)
    table = summarize(rows)
    print(render(table, args))
    if args.json:
        args.json.write_text(
            json.dumps({"environment": env, "rows": rows, "summary": table}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
