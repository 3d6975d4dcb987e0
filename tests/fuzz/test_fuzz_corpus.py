"""The fuzz harness without atheris: every committed seed, plus hand-written hostile
inputs, through `fuzz_buffer.run_one` (fuzz/fuzz_buffer.py).

`run_one` checks the invariants of REFERENCE.md §4.1 on every call it makes and
raises `Finding` when one breaks; these tests add what each seed must reach, so a
corpus that silently stopped reaching the handshake or the data phase fails here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from fuzz_buffer import (
    HERE,
    ROLES,
    Outcome,
    decode_replay,
    encode_live,
    encode_replay,
    environment,
    op,
    run_one,
)

import unitls

FUZZ_DIR = HERE  # fuzz/, put on sys.path by conftest.py
CORPUS = FUZZ_DIR / "corpus"
SEEDS = sorted((role, path.name) for role in ROLES for path in (CORPUS / role).iterdir())


def test_corpus_has_seeds_of_every_kind() -> None:
    for role in ROLES:
        names = {name for r, name in SEEDS if r == role}
        assert {"replay-default-full", "replay-tls12-full", "live-session-default"} <= names
        assert len(names) >= 40


def _check_live(name: str, outcome: Outcome) -> None:
    if name.startswith(("live-session-", "live-resume-")):
        variant = outcome.variant
        assert outcome.handshake_complete
        assert outcome.error is None
        assert outcome.clean_close
        assert outcome.faithful
        assert (outcome.plaintext_received, outcome.plaintext_sent) == (300, 300)
        assert outcome.negotiated_protocol == (b"h2" if "alpn" in variant else None)
        assert outcome.tls_version == ("TLSv1.2" if variant.startswith("tls12") else "TLSv1.3")
    elif name == "live-ragged-eof":
        # Half a record, then EOF: nothing of it is delivered, and it is not a clean close.
        assert outcome.handshake_complete
        assert outcome.error == "RaggedEOF"
        assert outcome.plaintext_received == 0
        assert not outcome.clean_close
    elif name == "live-clean-eof":
        assert outcome.error is None
        assert outcome.clean_close
        assert outcome.eof
        assert outcome.plaintext_received == 10
    elif name in ("live-flip-handshake", "live-flip-data", "live-drop", "live-inject"):
        assert not outcome.faithful
        assert outcome.error is not None
        assert outcome.plaintext_received == 0
    elif name == "live-split":
        assert outcome.error is None
        assert outcome.plaintext_received == 5000
    elif name == "live-backpressure-out":
        # write() refused once more than OUTGOING_LIMIT bytes waited, and every byte
        # it did take reached the peer (run_one checks that on a faithful wire).
        limit = environment().outgoing_limit
        assert outcome.refused_writes >= 1
        assert limit - 65535 < outcome.plaintext_sent <= limit + 65535
        assert outcome.error is None
    elif name == "live-backpressure-in":
        # process_incoming refused while more than INCOMING_LIMIT bytes waited; the
        # refused bytes arrived once the reader caught up.
        assert outcome.refused_incoming >= 1
        assert outcome.plaintext_received == 6 * 65535
        assert outcome.error is None
    elif name == "live-halfclose":
        assert outcome.error is None
        assert outcome.clean_close
        assert outcome.plaintext_received == 700
    else:  # pragma: no cover - a new live seed needs its expectations here
        pytest.fail(f"no expectations for {name}")


def _check_replay(role: str, name: str, outcome: Outcome) -> None:
    # A recorded session replayed to a fresh buffer never completes a handshake and
    # never yields plaintext: every recorded seed ends in a typed error.
    assert not outcome.handshake_complete
    assert outcome.plaintext_received == 0
    assert outcome.error is not None
    if role == "client":
        assert outcome.bytes_out > 0  # its ClientHello
        if "untrusted" in name or "wrongname" in name:
            # TLS 1.2 certificates travel in clear: verification runs on replay.
            assert outcome.error == "CertificateVerificationError"
    elif "midstream" not in name:
        assert outcome.bytes_out > 0  # the server answered the recorded ClientHello
    if role == "server" and name.endswith("-eof") and "alert-version" not in name:
        # A ClientHello the server accepts, then EOF: the handshake cannot finish.
        assert outcome.eof
        assert outcome.error == "RaggedEOF"


@pytest.mark.parametrize(("role", "name"), SEEDS, ids=[f"{r}/{n}" for r, n in SEEDS])
def test_seed(role: str, name: str) -> None:
    outcome = run_one(role, (CORPUS / role / name).read_bytes())
    assert outcome.live == name.startswith("live-")
    if outcome.live:
        _check_live(name, outcome)
    else:
        _check_replay(role, name, outcome)


# -- hand-written hostile inputs ---------------------------------------------------------


def _fresh(role: str) -> unitls.TLSBuffer:
    """A buffer of `role` that has sent what it sends first (a client's ClientHello)."""
    buffer = environment().new_buffer(role, "default")
    with pytest.raises(unitls.WantReadError):
        buffer.do_handshake()
    buffer.process_outgoing(1 << 20)
    return buffer


def _assert_dead(buffer: unitls.TLSBuffer, first: unitls.TLSError) -> None:
    """Every later call fails with the same kind of error; never a Want* signal."""
    for call in (buffer.do_handshake, lambda: buffer.read(100), lambda: buffer.write(b"x")):
        with pytest.raises(unitls.TLSError) as info:
            call()
        assert type(info.value) is type(first)
        assert not isinstance(info.value, (unitls.WantReadError, unitls.WantWriteError))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("content_type", [0x16, 0x17], ids=["handshake", "appdata"])
def test_record_header_claiming_65535_bytes_fails_at_once(role: str, content_type: int) -> None:
    buffer = _fresh(role)
    header = bytes([content_type, 0x03, 0x03, 0xFF, 0xFF])
    buffer.process_incoming(header)
    # Five bytes are enough to fail: no WantReadError waiting for 64 KiB to arrive.
    with pytest.raises(unitls.TLSError) as info:
        buffer.do_handshake()
    assert not isinstance(info.value, unitls.WantReadError)
    assert "too long" in str(info.value)
    assert buffer.incoming_bytes_buffered() == 0
    assert buffer.process_outgoing(1 << 20)[:1] == b"\x15"  # the alert still goes out
    _assert_dead(buffer, info.value)
    # The same bytes through the harness, with its invariants.
    outcome = run_one(role, encode_replay("default", [header]))
    assert outcome.error == "TLSError"


@pytest.mark.parametrize("role", ROLES)
def test_empty_input(role: str) -> None:
    outcome = run_one(role, b"")
    assert outcome.error is None
    assert not outcome.handshake_complete
    # A client has sent its ClientHello; a server waits for one.
    assert (outcome.bytes_out > 0) == (role == "client")


@pytest.mark.parametrize("role", ROLES)
def test_four_kib_of_0x16(role: str) -> None:
    buffer = _fresh(role)
    buffer.process_incoming(b"\x16" * 4096)
    with pytest.raises(unitls.TLSError) as info:
        buffer.do_handshake()
    assert not isinstance(info.value, unitls.WantReadError)
    _assert_dead(buffer, info.value)
    # As a raw fuzz input (flags 0x16: replay, variant tls13) and as one replay chunk.
    assert run_one(role, b"\x16" * 4096).error == "TLSError"
    assert run_one(role, encode_replay("default", [b"\x16" * 4095])).error == "TLSError"


def _recorded_client_hello() -> bytes:
    _, chunks, _ = decode_replay((CORPUS / "server" / "replay-default-full").read_bytes())
    assert chunks[0][:1] == b"\x16"  # a handshake record: the ClientHello
    return chunks[0]


def test_client_hello_followed_by_garbage() -> None:
    hello = _recorded_client_hello()
    garbage = b"\x17\x03\x03\x00\x20" + b"G" * 32  # a record that decrypts to nothing
    buffer = environment().new_buffer("server", "default")
    buffer.process_incoming(hello + garbage)
    with pytest.raises(unitls.TLSError) as info:
        buffer.do_handshake()
    assert not isinstance(info.value, unitls.WantReadError)
    # The server answered the ClientHello before the garbage failed it.
    assert buffer.process_outgoing(1 << 20)[:1] == b"\x16"
    _assert_dead(buffer, info.value)
    outcome = run_one("server", encode_replay("default", [hello + garbage]))
    assert outcome.error == "TLSError"
    assert outcome.bytes_out > 0
    assert run_one("server", encode_replay("default", [hello, garbage * 8])).error == "TLSError"


def test_replay_encoding_round_trips() -> None:
    chunks = [b"a" * 10, b"", b"b" * 4095]
    data = encode_replay("tls12-alpn", chunks, eof=True, options=[1, 0, 0xF])
    assert decode_replay(data) == ("tls12-alpn", chunks, True)
    with pytest.raises(ValueError, match="at most"):
        encode_replay("default", [b"x" * 4096])
    with pytest.raises(ValueError, match="replay"):
        decode_replay(encode_live("default", [op.step()]))
    with pytest.raises(ValueError, match="role"):
        run_one("proxy", b"")


# -- findings from fuzzing ---------------------------------------------------------------


def _wrongname_der() -> bytes:
    pem = (FUZZ_DIR / "certs" / "wrongname.pem").read_bytes()
    return base64.b64decode(b"".join(line for line in pem.splitlines() if b"-----" not in line))


def _bad_minutes(der: bytes) -> int:
    """A minutes digit of notAfter (a GeneralizedTime: the validity is 100 years)."""
    return der.index(b"\x18\x0f") + 2 + 10


def _bad_version(der: bytes) -> int:
    """The version number: Certificate and TBSCertificate headers, then a0 03 02 01 02."""
    assert der[8:13] == bytes.fromhex("a003020102")
    return 12


# Found by fuzz/fuzz_buffer.py --role client (replay mode, within 400 runs): OpenSSL
# parses certificates lazily (it checks the name before it ever reads the validity
# dates), but cryptography's DER parser is strict, so listing the names a mismatched
# certificate presents raised a plain ValueError (or cryptography's InvalidVersion)
# out of do_handshake instead of CertificateVerificationError (invariant 1).
@pytest.mark.parametrize("where", [_bad_minutes, _bad_version], ids=["not-after", "version"])
def test_name_mismatch_with_a_certificate_cryptography_cannot_parse(
    where: Callable[[bytes], int],
) -> None:
    _, chunks, _ = decode_replay((CORPUS / "client" / "replay-wrongname-tls12-full").read_bytes())
    flight = bytearray(chunks[0])
    der = _wrongname_der()
    # 0xFF is not a digit; 91 is not an X.509 version (cryptography raises InvalidVersion).
    flight[flight.index(der) + where(der)] = 0xFF if where is _bad_minutes else 91
    buffer = _fresh("client")  # variant "default" accepts the TLS 1.2 server
    buffer.process_incoming(bytes(flight))
    with pytest.raises(unitls.CertificateVerificationError) as info:
        buffer.do_handshake()
    assert info.value.verify_code == 62  # hostname mismatch, found before the dates
    assert info.value.presented_names == ()
    assert "names that cannot be read" in str(info.value)
