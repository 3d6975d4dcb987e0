"""Resource bounds of `OpenSSLTLSBuffer`: the two limits, memory per connection, and
10,000 live connection pairs in one process.

The memory figures are documented in the `_buffer.py` module docstring and in
bench/README.md ("Memory bounds"):

- an idle established buffer: at most `IDLE_CEILING` (measured about 36 KiB with
  the default X25519MLKEM768 key exchange; the benchmark's P-256 figure is 60 KiB
  for a client and server end together);
- a buffer with both limits full: at most `full_ceiling(chunk)`, the queued
  ciphertext plus `STATE_ALLOWANCE` for OpenSSL's state and record buffers
  (measured about 620 KiB with 64 KiB chunks).

RSS is read from /proc (Linux, as CI; elsewhere the peak RSS) in a fresh subprocess
per measurement, after
`gc.collect()` and glibc's `malloc_trim(0)`, so that memory freed by earlier tests
cannot hide what the connections cost. Nothing here is timed; the durations are
printed for the report only.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

import unitls
from helpers import handshake, pump, read_all, signing_chain, trust_store
from unitls.openssl import INCOMING_LIMIT, OPENSSL_IMPLEMENTATION, OUTGOING_LIMIT

TLS12 = unitls.TLSVersion.TLSv1_2
TLS13 = unitls.TLSVersion.TLSv1_3
#: Largest TLS record on the wire: 16 KiB of plaintext plus header and AEAD/padding overhead.
MAX_WIRE_RECORD = 16 * 1024 + 256 + 5
#: The chunk size these tests hand to `process_incoming`.
CHUNK = 64 * 1024
KiB = 1024
#: OpenSSL's per-connection state, its two record buffers (about 17 KiB each while
#: in use) and unitls' Python objects, on top of the queued ciphertext.
STATE_ALLOWANCE = 64 * KiB
#: What one idle, established buffer may cost.
IDLE_CEILING = 64 * KiB


def full_ceiling(chunk: int) -> int:
    """The most one buffer holds with both limits full, for `process_incoming`
    chunks of at most `chunk` bytes."""
    return INCOMING_LIMIT + chunk + OUTGOING_LIMIT + MAX_WIRE_RECORD + STATE_ALLOWANCE


@pytest.fixture(params=[TLS12, TLS13], ids=["tls12", "tls13"])
def pair(
    request: pytest.FixtureRequest, ca: trustme.CA, server_config: unitls.TLSServerConfiguration
) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
    client_config = unitls.TLSClientConfiguration(
        trust_store=trust_store(ca), highest_supported_version=request.param
    )
    client = OPENSSL_IMPLEMENTATION.client_context(client_config).create_buffer("localhost")
    server = OPENSSL_IMPLEMENTATION.server_context(server_config).create_buffer()
    handshake(client, server)
    with pytest.raises(unitls.WantReadError):
        client.read(1)  # consume TLS 1.3 session tickets: incoming is counted exactly below
    assert client.incoming_bytes_buffered() == server.incoming_bytes_buffered() == 0
    return client, server


def fill_outgoing(buf: unitls.TLSBuffer, data: memoryview, sent: bytearray) -> None:
    """Write until `write` refuses; `sent` gets exactly what was taken."""
    while True:
        try:
            taken = buf.write(data[len(sent) : len(sent) + 16384])
        except unitls.WantWriteError:
            return
        assert taken > 0
        sent += data[len(sent) : len(sent) + taken]


# -- the limits hold, and nothing is lost --------------------------------------------------------


def test_both_limits_full_at_once_hold_and_nothing_is_lost(
    pair: tuple[unitls.TLSBuffer, unitls.TLSBuffer],
):
    client, server = pair
    rng = random.Random(7)
    data = {client: memoryview(rng.randbytes(4 << 20)), server: memoryview(rng.randbytes(4 << 20))}
    sent = {client: bytearray(), server: bytearray()}
    wire = {client: bytearray(), server: bytearray()}  # ciphertext taken, not yet fed
    fed = {client: 0, server: 0}  # ciphertext each buffer accepted
    peer = {client: server, server: client}

    # 1. Queue ciphertext until each side holds more than INCOMING_LIMIT + CHUNK of
    #    it in flight, then feed each receiver until it refuses, with a full CHUNK
    #    arriving when exactly INCOMING_LIMIT bytes wait (the worst case).
    for buf in (client, server):
        while len(wire[buf]) < INCOMING_LIMIT + 2 * CHUNK:
            fill_outgoing(buf, data[buf], sent[buf])
            wire[buf] += buf.process_outgoing(1 << 20)
    for sender, receiver in ((client, server), (server, client)):
        while fed[receiver] < INCOMING_LIMIT:
            step = min(CHUNK, INCOMING_LIMIT - fed[receiver])
            receiver.process_incoming(bytes(wire[sender][:step]))
            del wire[sender][:step]
            fed[receiver] += step
        assert receiver.incoming_bytes_buffered() == INCOMING_LIMIT  # counted to the byte
        receiver.process_incoming(memoryview(wire[sender])[:CHUNK])  # not "more than" yet
        del wire[sender][:CHUNK]
        fed[receiver] += CHUNK
        assert receiver.incoming_bytes_buffered() == INCOMING_LIMIT + CHUNK == fed[receiver]
        for attempt in (b"x", bytes(wire[sender][:CHUNK]), bytearray(wire[sender][:10])):
            with pytest.raises(unitls.WantReadError):
                receiver.process_incoming(attempt)
            assert receiver.incoming_bytes_buffered() == INCOMING_LIMIT + CHUNK  # nothing stored

    # 2. Now fill each outgoing side past OUTGOING_LIMIT as well.
    for buf in (client, server):
        fill_outgoing(buf, data[buf], sent[buf])
        queued = buf.outgoing_bytes_buffered()
        assert OUTGOING_LIMIT < queued <= OUTGOING_LIMIT + MAX_WIRE_RECORD
        for attempt in (b"y", data[buf][len(sent[buf]) :], bytearray(100)):
            with pytest.raises(unitls.WantWriteError):
                buf.write(attempt)
            assert buf.outgoing_bytes_buffered() == queued  # nothing taken
        # Both limits are full on the same buffer at once.
        assert buf.incoming_bytes_buffered() == INCOMING_LIMIT + CHUNK

    # 3. Drain everything: every byte that was taken arrives, once, in order.
    received = {client: bytearray(), server: bytearray()}
    for _ in range(1000):
        moved = 0
        for buf in (client, server):
            received[buf] += read_all(buf)
            wire[buf] += buf.process_outgoing(1 << 20)
        for sender in (client, server):
            while wire[sender]:
                try:
                    peer[sender].process_incoming(bytes(wire[sender][:CHUNK]))
                except unitls.WantReadError:
                    break
                moved += min(CHUNK, len(wire[sender]))
                del wire[sender][:CHUNK]
        if not moved and not any(wire.values()):
            break
    for buf in (client, server):
        received[buf] += read_all(buf)
    assert received[server] == sent[client]
    assert received[client] == sent[server]
    assert len(sent[client]) > INCOMING_LIMIT + OUTGOING_LIMIT
    for buf in (client, server):
        assert buf.incoming_bytes_buffered() == 0
        assert buf.outgoing_bytes_buffered() == 0


# -- memory (measured in a fresh subprocess) -------------------------------------------------------


def rss_bytes() -> int:
    """Resident memory after a collection, with free heap pages handed back."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure includes free heap
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except FileNotFoundError:  # no /proc (macOS): the peak, which only grows here
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Contexts:
    def __init__(self) -> None:
        ca = trustme.CA()
        self.client = OPENSSL_IMPLEMENTATION.client_context(
            unitls.TLSClientConfiguration(trust_store=trust_store(ca))
        )
        self.server = OPENSSL_IMPLEMENTATION.server_context(
            unitls.TLSServerConfiguration(
                certificate_chain=[signing_chain(ca.issue_cert("localhost"))]
            )
        )

    def idle_pair(self) -> tuple[unitls.TLSBuffer, unitls.TLSBuffer]:
        """An established pair that has carried one message each way (tickets read),
        with nothing left to send: an idle connection."""
        client, server = self.client.create_buffer("localhost"), self.server.create_buffer()
        handshake(client, server)
        client.write(b"ping")
        server.write(b"pong")
        pump(client, server)
        pump(server, client)
        assert server.read(10) == b"ping"
        assert client.read(10) == b"pong"
        assert client.outgoing_bytes_buffered() == server.outgoing_bytes_buffered() == 0
        return client, server


def fill_both_limits(client: unitls.TLSBuffer, server: unitls.TLSBuffer, data: memoryview) -> None:
    """The worst case of test_both_limits_full_at_once_hold_and_nothing_is_lost, on
    both buffers of a pair, without draining."""
    for sender, receiver in ((client, server), (server, client)):
        wire = bytearray()
        while len(wire) < INCOMING_LIMIT + CHUNK:
            sender.write(data[:16384])
            wire += sender.process_outgoing(1 << 20)
        for start in range(0, INCOMING_LIMIT + CHUNK, CHUNK):
            receiver.process_incoming(bytes(wire[start : start + CHUNK]))
        assert receiver.incoming_bytes_buffered() == INCOMING_LIMIT + CHUNK
    for buf in (client, server):
        fill_outgoing(buf, data, bytearray())
        assert buf.outgoing_bytes_buffered() > OUTGOING_LIMIT


def measure_full(count: int) -> dict[str, Any]:
    contexts = Contexts()
    data = memoryview(random.Random(3).randbytes(1 << 20))
    warm = [contexts.idle_pair() for _ in range(10)]
    for client, server in warm:
        fill_both_limits(client, server, data)
    before = rss_bytes()
    pairs = [contexts.idle_pair() for _ in range(count)]
    for client, server in pairs:
        fill_both_limits(client, server, data)
    after = rss_bytes()
    queued = sum(
        buf.incoming_bytes_buffered() + buf.outgoing_bytes_buffered()
        for pair in pairs
        for buf in pair
    )
    return {"per_buffer": (after - before) / (2 * count), "queued_per_buffer": queued / (2 * count)}


def measure_many(count: int) -> dict[str, Any]:
    contexts = Contexts()
    warm = [contexts.idle_pair() for _ in range(50)]
    del warm
    before = rss_bytes()
    started = time.perf_counter()
    pairs = [contexts.idle_pair() for _ in range(count)]
    established = time.perf_counter() - started
    after = rss_bytes()
    # All alive at once; now a round trip on a sample, then a clean close of all.
    for client, server in pairs[:: max(1, count // 100)]:
        message = random.Random(len(pairs)).randbytes(5000)
        client.write(message)
        pump(client, server)
        assert read_all(server) == message
        server.write(message[::-1])
        pump(server, client)
        assert read_all(client) == message[::-1]
    for client, server in pairs:
        with pytest.raises(unitls.WantReadError):
            client.shutdown()
        pump(client, server)
        assert server.read(10) == b""
        server.shutdown()
        pump(server, client)
        assert client.read(10) == b""
        client.shutdown()
    closed = len(pairs)
    del pairs
    retained = rss_bytes()
    return {
        "pairs": count,
        "closed": closed,
        "per_pair": (after - before) / count,
        "retained_per_pair": (retained - before) / count,
        "seconds_to_establish": established,
        "seconds_total": time.perf_counter() - started,
        "peak_rss": after,
    }


def run_child(kind: str, count: int) -> dict[str, Any]:
    tests = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, __file__, kind, str(count)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(tests)},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_buffer_with_both_limits_full_stays_under_the_documented_ceiling():
    result = run_child("full", 100)
    print(
        f"\nboth limits full: {result['per_buffer'] / KiB:.1f} KiB RSS per buffer, "
        f"{result['queued_per_buffer'] / KiB:.1f} KiB of it queued ciphertext"
    )
    assert result["queued_per_buffer"] > INCOMING_LIMIT + CHUNK + OUTGOING_LIMIT
    assert result["per_buffer"] <= full_ceiling(CHUNK)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_10000_established_connection_pairs_in_one_process():
    result = run_child("many", 10_000)
    print(
        f"\n{result['pairs']} pairs: {result['per_pair'] / KiB:.1f} KiB RSS per idle pair "
        f"(both ends), {result['retained_per_pair'] / KiB:.1f} KiB still held per pair "
        f"after all were closed; established in {result['seconds_to_establish']:.1f} s, "
        f"{result['seconds_total']:.1f} s with the checks and clean closes; "
        f"peak RSS {result['peak_rss'] / (1 << 20):.0f} MiB"
    )
    assert result["closed"] == 10_000
    assert result["per_pair"] <= 2 * IDLE_CEILING
    assert result["retained_per_pair"] <= 4 * KiB  # closed connections leave nothing behind


if __name__ == "__main__":  # the measuring subprocess: python test_resources.py KIND COUNT
    kind, count = sys.argv[1], int(sys.argv[2])
    measure = {"full": measure_full, "many": measure_many}[kind]
    print(json.dumps(measure(count)))
