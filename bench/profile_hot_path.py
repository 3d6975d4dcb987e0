"""Per-call costs behind the bench_tls.py rows: unitls vs raw pyOpenSSL (and the stdlib).

    python bench/profile_hot_path.py [handshake] [small] [micro] [--cprofile] [-n N]

handshake  each step of one in-memory handshake (creating both ends, every
           do_handshake, every pump, freeing), median microseconds per step over N
           handshakes, unitls and raw pyOpenSSL interleaved. OpenSSL does the same
           work under both, so a step's difference is Python overhead.
small      each call of the 256 B write loop (write, drain, feed, read), median
           nanoseconds, for the three implementations.
micro      timeit of the pieces of unitls' per-handshake overhead (creating a client
           buffer, hostname parsing, the WantReadError translation) beside raw
           pyOpenSSL's equivalents.
--cprofile cProfile of the unitls handshake and 256 B loops (top functions by own time).

Timer overhead (an empty perf_counter_ns pair) is measured and subtracted. Uses the
same contexts and settings as bench_tls.py (P-256 pinned, TLS 1.3, AES-256-GCM).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import os
import pstats
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from OpenSSL import SSL, crypto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_tls as bt  # a sibling script, not a package
from unitls.openssl import _verify

HS_STEPS = (
    "new client",
    "new server",
    "client hs #1 (ClientHello)",
    "pump c->s",
    "server hs #1 (ServerHello..Finished)",
    "pump s->c",
    "client hs #2 (verify, Finished)",
    "pump c->s #2",
    "server hs #2 (Finished, tickets)",
    "pump s->c #2",
    "free both ends",
)


def timer_overhead() -> int:
    samples = []
    for _ in range(20_000):
        t0 = perf_counter_ns()
        t1 = perf_counter_ns()
        samples.append(t1 - t0)
    return int(statistics.median(samples))


# -- handshake steps ------------------------------------------------------------------


def _steps_unitls(impl: bt.Unitls, out: list[list[int]]) -> None:
    create_client, create_server = impl.client_ctx.create_buffer, impl.server_ctx.create_buffer
    want = impl.WantRead
    t = [perf_counter_ns()]
    c = create_client(bt.HOSTNAME)
    t.append(perf_counter_ns())
    s = create_server()
    t.append(perf_counter_ns())
    try:
        c.do_handshake()
    except want:
        pass
    t.append(perf_counter_ns())
    s.process_incoming(c.process_outgoing(bt.DRAIN))
    t.append(perf_counter_ns())
    try:
        s.do_handshake()
    except want:
        pass
    t.append(perf_counter_ns())
    c.process_incoming(s.process_outgoing(bt.DRAIN))
    t.append(perf_counter_ns())
    c.do_handshake()
    t.append(perf_counter_ns())
    s.process_incoming(c.process_outgoing(bt.DRAIN))
    t.append(perf_counter_ns())
    s.do_handshake()
    t.append(perf_counter_ns())
    c.process_incoming(s.process_outgoing(bt.DRAIN))
    t.append(perf_counter_ns())
    if impl.reused(c):
        raise bt.BenchError("resumed")
    t.append(perf_counter_ns())
    del c, s
    t.append(perf_counter_ns())
    _record(t, out, skip=10)


def _steps_pyopenssl(impl: bt.PyOpenSSL, out: list[list[int]]) -> None:
    cctx, sctx, setup = impl.client_ctx, impl.server_ctx, bt._pyopenssl_client_setup
    want = SSL.WantReadError
    t = [perf_counter_ns()]
    c = SSL.Connection(cctx, None)
    setup(c)
    t.append(perf_counter_ns())
    s = SSL.Connection(sctx, None)
    s.set_accept_state()
    t.append(perf_counter_ns())
    try:
        c.do_handshake()
    except want:
        pass
    t.append(perf_counter_ns())
    s.bio_write(c.bio_read(bt.DRAIN))
    t.append(perf_counter_ns())
    try:
        s.do_handshake()
    except want:
        pass
    t.append(perf_counter_ns())
    c.bio_write(s.bio_read(bt.DRAIN))
    t.append(perf_counter_ns())
    c.do_handshake()
    t.append(perf_counter_ns())
    s.bio_write(c.bio_read(bt.DRAIN))
    t.append(perf_counter_ns())
    s.do_handshake()
    t.append(perf_counter_ns())
    c.bio_write(s.bio_read(bt.DRAIN))
    t.append(perf_counter_ns())
    if impl.reused(c):
        raise bt.BenchError("resumed")
    t.append(perf_counter_ns())
    del c, s
    t.append(perf_counter_ns())
    _record(t, out, skip=10)


def _record(t: list[int], out: list[list[int]], skip: int) -> None:
    """Store step durations; interval `skip` (the resumption check) is not a step."""
    steps = [b - a for i, (a, b) in enumerate(itertools.pairwise(t)) if i != skip]
    for i, d in enumerate(steps):
        out[i].append(d)


def _raw_like_unitls(creds: bt.Credentials) -> bt.PyOpenSSL:
    """Raw pyOpenSSL with the C-level settings unitls adds: SSL_MODE_RELEASE_BUFFERS and
    X509_STRICT | PARTIAL_CHAIN on the client's store. Against this, a step's
    difference is Python overhead only."""
    impl = bt.PyOpenSSL(creds, pinned=True, release_buffers=True)
    store = impl.client_ctx.get_cert_store()
    assert store is not None
    store.set_flags(crypto.X509StoreFlags.X509_STRICT | crypto.X509StoreFlags.PARTIAL_CHAIN)
    return impl


def handshake_steps(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        creds = bt.Credentials(tmp)
        u = bt.Unitls(creds, pinned=True)
        p = bt.PyOpenSSL(creds, pinned=True)
        q = _raw_like_unitls(creds)
    overhead = timer_overhead()
    runs: list[tuple[Callable[[Any, list[list[int]]], None], Any]] = [
        (_steps_pyopenssl, p),
        (_steps_pyopenssl, q),
        (_steps_unitls, u),
    ]
    results: list[list[list[int]]] = [[[] for _ in HS_STEPS] for _ in runs]
    for _ in range(20):  # warm-up
        for fn, impl in runs:
            fn(impl, [[] for _ in HS_STEPS])
    gc.collect()
    gc.disable()
    try:
        for i in range(n):
            for k in range(len(runs)):
                j = (i + k) % len(runs)
                fn, impl = runs[j]
                fn(impl, results[j])
    finally:
        gc.enable()
    print(
        f"\nHandshake steps, median µs over {n} handshakes (timer overhead {overhead} ns removed)"
    )
    print(
        "raw+ = raw pyOpenSSL with unitls' C settings (RELEASE_BUFFERS, X509_STRICT|PARTIAL_CHAIN)"
    )
    print(
        f"{'step':38} {'raw':>8} {'raw+':>8} {'unitls':>8} {'unitls-raw':>11} {'unitls-raw+':>12}"
    )
    totals = [0.0, 0.0, 0.0]
    for step, name in enumerate(HS_STEPS):
        med = [(statistics.median(r[step]) - overhead) / 1000 for r in results]
        totals = [t + m for t, m in zip(totals, med, strict=True)]
        print(
            f"{name:38} {med[0]:8.2f} {med[1]:8.2f} {med[2]:8.2f} "
            f"{med[2] - med[0]:+11.2f} {med[2] - med[1]:+12.2f}"
        )
    raw, raw_plus, uni = totals
    print(
        f"{'sum of medians':38} {raw:8.2f} {raw_plus:8.2f} {uni:8.2f} "
        f"{uni - raw:+11.2f} {uni - raw_plus:+12.2f}"
    )
    print(
        f"unitls per handshake vs raw: {(uni - raw) / raw * 100:+.1f} %; "
        f"vs raw+ (Python overhead only): {(uni - raw_plus) / raw_plus * 100:+.1f} %"
    )


# -- the 256 B loop, call by call --------------------------------------------------------


def _small_calls(impl: bt.Impl, c: Any, s: Any, writes: int) -> list[list[int]]:
    """(write, drain, feed, read) durations for `writes` 256 B round trips."""
    block = bytes(range(256))
    if isinstance(impl, bt.Stdlib):
        write, drain, feed, read = c[0].write, c[2].read, s[1].write, s[0].read
    elif isinstance(impl, bt.PyOpenSSL):
        write, drain, feed, read = c.send, c.bio_read, s.bio_write, s.recv
    else:
        write, drain, feed, read = c.write, c.process_outgoing, s.process_incoming, s.read
    w: list[int] = []
    d: list[int] = []
    f: list[int] = []
    r: list[int] = []
    drain_n, read_n = bt.DRAIN, bt.READ
    for _ in range(writes):
        t0 = perf_counter_ns()
        write(block)
        t1 = perf_counter_ns()
        data = drain(drain_n)
        t2 = perf_counter_ns()
        feed(data)
        t3 = perf_counter_ns()
        got = read(read_n)
        t4 = perf_counter_ns()
        if len(got) != 256:
            raise bt.BenchError(f"{impl.name}: short read")
        w.append(t1 - t0)
        d.append(t2 - t1)
        f.append(t3 - t2)
        r.append(t4 - t3)
    return [w, d, f, r]


def small_calls(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        creds = bt.Credentials(tmp)
        impls = {name: bt.make_impl(name, creds, pinned=True) for name in bt.IMPLEMENTATIONS}
    pairs = {name: bt.establish(impl) for name, impl in impls.items()}
    overhead = timer_overhead()
    results: dict[str, list[list[int]]] = {name: [[], [], [], []] for name in impls}
    gc.collect()
    gc.disable()
    try:
        for i in range(20):
            for name in bt.IMPLEMENTATIONS[i % 3 :] + bt.IMPLEMENTATIONS[: i % 3]:
                calls = _small_calls(impls[name], *pairs[name], n // 20)
                for acc, new in zip(results[name], calls, strict=True):
                    acc.extend(new)
    finally:
        gc.enable()
    print(
        f"\n256 B loop, median ns per call over {n} writes (timer overhead {overhead} ns removed)"
    )
    labels = ("write / send", "drain (outgoing, 65536)", "feed (incoming)", "read / recv (16384)")
    print(f"{'call':26}" + "".join(f"{name:>12}" for name in bt.IMPLEMENTATIONS))
    totals = dict.fromkeys(impls, 0.0)
    for j, label in enumerate(labels):
        row = f"{label:26}"
        for name in bt.IMPLEMENTATIONS:
            ns = statistics.median(results[name][j]) - overhead
            totals[name] += ns
            row += f"{ns:12.0f}"
        print(row)
    print(f"{'sum':26}" + "".join(f"{totals[name]:12.0f}" for name in bt.IMPLEMENTATIONS))


# -- timeit of the per-handshake pieces -------------------------------------------------------


def micro() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        creds = bt.Credentials(tmp)
        u = bt.Unitls(creds, pinned=True)
        p = bt.PyOpenSSL(creds, pinned=True)
    # A client that sent its ClientHello and waits: do_handshake only raises WantRead.
    waiting_u = u.client_ctx.create_buffer(bt.HOSTNAME)
    waiting_p = SSL.Connection(p.client_ctx, None)
    bt._pyopenssl_client_setup(waiting_p)
    for ep, want in ((waiting_u, u.WantRead), (waiting_p, SSL.WantReadError)):
        try:
            ep.do_handshake()
        except want:
            pass

    def hs_waiting_u() -> None:
        try:
            waiting_u.do_handshake()
        except u.WantRead:
            pass

    def hs_waiting_p() -> None:
        try:
            waiting_p.do_handshake()
        except SSL.WantReadError:
            pass

    def raw_client() -> None:
        bt._pyopenssl_client_setup(SSL.Connection(p.client_ctx, None))

    def raw_server() -> None:
        SSL.Connection(p.server_ctx, None).set_accept_state()

    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "unitls client create_buffer('localhost')",
            lambda: u.client_ctx.create_buffer("localhost"),
        ),
        ("raw Connection + SNI + set1_host + connect", raw_client),
        (
            "unitls parse_server_hostname('localhost')",
            lambda: _verify.parse_server_hostname("localhost"),
        ),
        ("  of which ipaddress.ip_address (raises)", lambda: _try_ip("localhost")),
        ("unitls server create_buffer()", u.server_ctx.create_buffer),
        ("raw Connection + set_accept_state", raw_server),
        ("unitls do_handshake -> WantReadError", hs_waiting_u),
        ("raw do_handshake -> SSL.WantReadError", hs_waiting_p),
        ("unitls process_outgoing (empty)", lambda: waiting_u.process_outgoing(bt.DRAIN)),
        ("raw bio_read (empty, raises)", lambda: _bio_read_empty(waiting_p)),
    ]
    print("\nPer-handshake pieces (timeit, best of 5, µs per call)")
    for label, fn in cases:
        number = 2000
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
        print(f"{label:48} {best:8.2f}")


def _try_ip(name: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass


def _bio_read_empty(conn: SSL.Connection) -> None:
    try:
        conn.bio_read(bt.DRAIN)
    except SSL.WantReadError:
        pass


# -- cProfile ------------------------------------------------------------------------------


def profile(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        creds = bt.Credentials(tmp)
        u = bt.Unitls(creds, pinned=True)
        u_hs = bt.Unitls(creds, pinned=True)
    c, s = bt.establish(u)
    block = bytes(range(256))
    for title, fn in (
        (f"unitls: {n} handshakes", lambda: u_hs.handshakes(n)),
        (f"unitls: {n * 100} x 256 B writes", lambda: u.bulk(c, s, n * 100, block)),
    ):
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        print(f"\ncProfile, {title} (own time; cProfile inflates per-call costs)")
        pstats.Stats(prof).sort_stats("tottime").print_stats(14)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", help="handshake, small and/or micro (default: all)")
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile tables")
    parser.add_argument("-n", type=int, default=400, help="handshakes to time (default 400)")
    args = parser.parse_args(argv)
    what = args.what or ["handshake", "small", "micro"]
    unknown = set(what) - {"handshake", "small", "micro"}
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    env = bt.environment()
    print(
        f"Python {env['python']}; pyOpenSSL {env['pyopenssl']} on {env['pyopenssl_openssl']}; "
        f"ssl on {env['stdlib_openssl']}; unitls {env['unitls']}"
    )
    if "handshake" in what:
        handshake_steps(args.n)
    if "small" in what:
        small_calls(args.n * 250)
    if "micro" in what:
        micro()
    if args.cprofile:
        profile(args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
