"""x509-limbo vectors through real unitls handshakes (REFERENCE.md §4.3).

Every limbo testcase that comes with the peer's private key is played as an
in-memory TLS 1.3 handshake:

* SERVER cases: a **unitls client** that trusts the case's `trusted_certs` connects
  to a raw pyOpenSSL server presenting `peer_certificate` and the
  `untrusted_intermediates`.
* CLIENT cases: a **unitls server** that trusts the case's `trusted_certs` and
  requires a client certificate accepts a raw pyOpenSSL client presenting them.

The raw pyOpenSSL side is only the peer: it runs at `@SECLEVEL=0` so that weak
keys and signatures in the vectors reach the unitls side, which is what is tested.
A case passes (SUCCESS) when the handshake completes and fails (FAILURE) when
unitls raises a `TLSError`; any other exception escaping unitls is a bug.

Results are compared with the real-handshake column (for the OpenSSL in use) of
`data/limbo-openssl-baseline.json`, not with `expected`: OpenSSL is lenient in
known ways, so a case fails only when unitls does *worse* than that baseline, and
the cases where unitls does better are pinned by `test_limbo_summary`. Cases the
baseline skipped stay skipped with the baseline's reason.

The harness reaches into unitls' private OpenSSL objects for what the public API
rightly does not offer: each vector's verification time (its certificates are
valid at a fixed `validation_time`), `max_chain_depth` and CRLs, and a chain check
without a peer name for the one SERVER case that has none. That is acceptable in
this conformance harness only.
"""

from __future__ import annotations

import collections
import datetime
import functools
import json
import pathlib
import warnings
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from OpenSSL import SSL, crypto

import unitls
from helpers import signing_chain
from unitls.openssl import OpenSSLClientContext, OpenSSLServerContext, OpenSSLTLSBuffer
from unitls.openssl._lowlevel import lib

DATA = pathlib.Path(__file__).parent.parent / "data"

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
SKIPPED = "SKIPPED"

CASES: dict[str, dict[str, Any]] = {
    case["id"]: case for case in json.loads((DATA / "limbo.json").read_text())["testcases"]
}
_BASELINE_ROWS: list[dict[str, str]] = json.loads(
    (DATA / "limbo-openssl-baseline.json").read_text()
)["results"]


def _baseline_column() -> str:
    """The real-handshake baseline column recorded with the OpenSSL that pyOpenSSL uses.

    OpenSSL's verifier changes between releases (4.0 stopped rejecting some
    non-critical extensions under X509_STRICT, openssl/openssl#30249), so the
    baseline is kept per OpenSSL major.minor; `tests/data/limbo_baseline.py` adds a
    column for a new one.
    """
    major, minor = (
        int(x) for x in SSL.OpenSSL_version(SSL.OPENSSL_VERSION).split()[1].split(b".")[:2]
    )
    prefix = f"pyopenssl_tls_handshake_openssl_{major}_{minor}_"
    columns = sorted(key for key in _BASELINE_ROWS[0] if key.startswith(prefix))
    if not columns:
        raise RuntimeError(
            f"no x509-limbo baseline for OpenSSL {major}.{minor}: run "
            "`python tests/data/limbo_baseline.py` to record one"
        )
    return columns[-1]


BASELINE_COLUMN = _baseline_column()
BASELINE: dict[str, str] = {row["id"]: row[BASELINE_COLUMN] for row in _BASELINE_ROWS}

# Per baseline column: cases the baseline got wrong and unitls gets right, pinned so
# that any change shows up. Against the OpenSSL 3.5.6 column, all four come from the
# OpenSSL upgrade (3.5.6 -> 4.0.3), not from unitls code; against the 4.0.3 column
# unitls matches the reference verifier exactly.
IMPROVEMENTS_BY_COLUMN: dict[str, tuple[str, ...]] = {
    "pyopenssl_tls_handshake_openssl_3_5_6": (
        "rfc5280::validity::notafter-exact",
        "rfc5280::validity::notafter-fractional",
        "webpki::aki::root-with-aki-authoritycertissuer",
        "webpki::aki::root-with-aki-authoritycertserialnumber",
    ),
    "pyopenssl_tls_handshake_openssl_4_0_3": (),
}
IMPROVEMENTS = IMPROVEMENTS_BY_COLUMN[BASELINE_COLUMN]


def _baseline_counts() -> tuple[int, int, int]:
    """(matches `expected`, differs, skipped) of the baseline column over all cases."""
    counts = collections.Counter(
        SKIPPED if row[BASELINE_COLUMN] == SKIPPED else row[BASELINE_COLUMN] == row["expected"]
        for row in _BASELINE_ROWS
    )
    return counts[True], counts[False], counts[SKIPPED]


# What unitls must reach: the baseline plus the pinned improvements.
_BASE = _baseline_counts()
EXPECTED_COUNTS = (_BASE[0] + len(IMPROVEMENTS), _BASE[1] - len(IMPROVEMENTS), _BASE[2])

# The CLIENT cases (all skipped by the baseline) where unitls, as a server, does
# not reach limbo's `expected` result. Pinned by test_limbo_client_cases.
CLIENT_DIFFERENCES: tuple[str, ...] = ("rfc5280::nc::nc-permits-invalid-email-san",)


def _skip_reason(case: dict[str, Any]) -> str:
    """Why the baseline skipped a case (the baseline file records only SKIPPED)."""
    if case["id"].startswith("online::"):
        return "baseline SKIPPED: online:: vector (a real site's chain, no private key)"
    if case["peer_certificate_key"] is None:
        return "baseline SKIPPED: no peer_certificate_key, so no TLS peer can present it"
    assert case["validation_kind"] == "CLIENT", case["id"]
    return (
        "baseline SKIPPED: client-certificate case with RFC822 (email) peer names; "
        "run without a baseline by test_limbo_client_cases"
    )


def _params() -> list[Any]:
    params = []
    for case_id, case in CASES.items():
        marks = []
        if BASELINE[case_id] == SKIPPED:
            marks.append(pytest.mark.skip(reason=_skip_reason(case)))
        params.append(pytest.param(case_id, marks=marks, id=case_id))
    return params


# -- the raw pyOpenSSL peer ------------------------------------------------------------


def _pems(blobs: list[str]) -> bytes:
    return "".join(blobs).encode()


def _peer_context(case: dict[str, Any], *, server: bool) -> SSL.Context:
    """The peer: presents the vector's certificate, key and intermediates.

    `@SECLEVEL=0` lets it use the weak keys and signatures some vectors carry; it
    never verifies anything itself. TLS 1.3 only, as the baseline column.
    """
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Some vectors break RFC 5280 on purpose (e.g. a zero serial number), which
        # cryptography warns about while loading them for the peer.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        leaf = x509.load_pem_x509_certificate(case["peer_certificate"].encode())
        chain = [
            x509.load_pem_x509_certificate(p.encode()) for p in case["untrusted_intermediates"]
        ]
    ctx.use_certificate(leaf)
    key = serialization.load_pem_private_key(case["peer_certificate_key"].encode(), None)
    ctx.use_privatekey(key)  # type: ignore[arg-type]
    for cert in chain:
        ctx.add_extra_chain_cert(cert)
    if not server:
        # The peer client does not judge the dummy server; only unitls' verdict counts.
        ctx.set_verify(SSL.VERIFY_NONE)
    return ctx


def _peer_step(conn: SSL.Connection) -> bool:
    """One handshake step of the raw peer; True once its handshake is done.

    The peer's own failures are not results: the alert it queues reaches the unitls
    side, which must then raise a `TLSError`.
    """
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        return False
    except SSL.Error:
        return False
    return True


def _move(buf: OpenSSLTLSBuffer, conn: SSL.Connection) -> int:
    """Deliver everything queued on both sides; return how many bytes moved."""
    moved = 0
    while data := buf.process_outgoing(1 << 20):
        conn.bio_write(data)
        moved += len(data)
    while True:
        try:
            data = conn.bio_read(1 << 20)
        except SSL.WantReadError:
            break
        buf.process_incoming(data)
        moved += len(data)
    return moved


def _drive(buf: OpenSSLTLSBuffer, conn: SSL.Connection) -> None:
    """Run the handshake between a unitls buffer and the raw peer to completion.

    Returns when the unitls side completed it; a `TLSError` from unitls propagates.
    """
    done = False
    for _ in range(20):
        if not done:
            try:
                buf.do_handshake()
                done = True
            except unitls.WantReadError:
                pass
        peer_done = _peer_step(conn)
        moved = _move(buf, conn)
        if done and peer_done and not moved:
            return
    raise AssertionError(f"handshake neither completed nor failed (unitls done: {done})")


def _apply_vector_inputs(ssl_context: SSL.Context, case: dict[str, Any]) -> None:
    """Give the OpenSSL context unitls built the vector's depth limit and CRLs.

    Private access, harness only: PEP 748 has no setting for either, but both are
    inputs of the vector, and the baseline verifier had them (its crl:: results are
    reproduced only with the CRLs loaded and CRL_CHECK on). Done right after the
    unitls context is constructed, before any buffer exists: a pyOpenSSL Context is
    immutable once used. `set_flags` adds to unitls' own store flags.
    """
    if case["max_chain_depth"] is not None:
        ssl_context.set_verify_depth(case["max_chain_depth"])
    if case["crls"]:
        store = ssl_context.get_cert_store()
        assert store is not None
        for pem in case["crls"]:
            store.add_crl(x509.load_pem_x509_crl(pem.encode()))
        store.set_flags(crypto.X509StoreFlags.CRL_CHECK)


def _set_time(buf: OpenSSLTLSBuffer, case: dict[str, Any]) -> None:
    # Private access, harness only: the vectors' certificates are valid at a fixed
    # `validation_time`, and unitls (rightly) has no public clock override. The time
    # goes on the connection's own verify param, where OpenSSL looks during the
    # handshake.
    if case["validation_time"] is not None:
        when = datetime.datetime.fromisoformat(case["validation_time"])
        lib.X509_VERIFY_PARAM_set_time(lib.SSL_get0_param(buf._ssl), int(when.timestamp()))


# -- the two directions ------------------------------------------------------------------


def _server_case(case: dict[str, Any]) -> None:
    """A unitls client verifies the vector's server certificate."""
    config = unitls.TLSClientConfiguration(
        trust_store=unitls.TrustStore.from_buffer(_pems(case["trusted_certs"]))
    )
    ctx = OpenSSLClientContext(config)
    _apply_vector_inputs(ctx._ssl_context, case)
    peer_name = case["expected_peer_name"]
    if peer_name is None:
        # The vector checks the chain only (the baseline verified it without a name);
        # the public create_buffer() always checks a name, so go one level down.
        buf = OpenSSLTLSBuffer._create_client(ctx, None)
    else:
        # DNS names and IP literals alike: unitls tells them apart itself.
        buf = ctx.create_buffer(peer_name["value"])
    _set_time(buf, case)
    peer = SSL.Connection(_peer_context(case, server=True), None)
    peer.set_accept_state()
    _drive(buf, peer)


@functools.cache
def _dummy_server_chain() -> unitls.SigningChain:
    return signing_chain(trustme.CA().issue_cert("localhost"))


def _client_case(case: dict[str, Any]) -> None:
    """A unitls server verifies the vector's client certificate."""
    config = unitls.TLSServerConfiguration(
        certificate_chain=[_dummy_server_chain()],
        trust_store=unitls.TrustStore.from_buffer(_pems(case["trusted_certs"])),
    )
    ctx = OpenSSLServerContext(config)
    for ssl_context in ctx._contexts.contexts:
        _apply_vector_inputs(ssl_context, case)
    buf = ctx.create_buffer()
    _set_time(buf, case)
    peer = SSL.Connection(_peer_context(case, server=False), None)
    peer.set_connect_state()
    peer.set_tlsext_host_name(b"localhost")
    _drive(buf, peer)
    # A TLS 1.3 client finishes before the server has judged its certificate: one
    # byte through the connection shows that the server accepted it.
    peer.send(b"x")
    _move(buf, peer)
    assert buf.read(1) == b"x"


@functools.cache
def outcome(case_id: str) -> str | BaseException:
    """SUCCESS, FAILURE, or the non-`TLSError` exception that escaped (a bug)."""
    case = CASES[case_id]
    run = _server_case if case["validation_kind"] == "SERVER" else _client_case
    try:
        run(case)
    except unitls.TLSError:
        return FAILURE
    except Exception as exc:
        return exc
    return SUCCESS


def _result(case_id: str) -> str:
    result = outcome(case_id)
    if isinstance(result, BaseException):
        raise AssertionError(
            f"{case_id}: not a TLSError: {result!r} (a unitls bug unless the traceback "
            "points into this harness)"
        ) from result
    return result


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", _params())
def test_limbo_case(case_id: str) -> None:
    expected = CASES[case_id]["expected_result"]
    result = _result(case_id)
    if BASELINE[case_id] == expected:
        # The baseline got this right: unitls must too.
        assert result == expected, (
            f"unitls: {result}; expected and baseline: {expected}\n" + CASES[case_id]["description"]
        )


def test_limbo_summary() -> None:
    counts: collections.Counter[str] = collections.Counter()
    improvements, regressions, escaped = [], [], []
    for case_id, case in CASES.items():
        baseline, expected = BASELINE[case_id], case["expected_result"]
        if baseline == SKIPPED:
            counts[SKIPPED] += 1
            continue
        result = outcome(case_id)
        if isinstance(result, BaseException):
            escaped.append(f"{case_id}: {result!r}")
            continue
        counts["match" if result == expected else "differ"] += 1
        if result == expected and baseline != expected:
            improvements.append(case_id)
        if result != expected and baseline == expected:
            regressions.append(case_id)
    summary = (counts["match"], counts["differ"], counts[SKIPPED])
    print(
        f"\nx509-limbo through unitls handshakes: {summary[0]} match expected, "
        f"{summary[1]} differ, {summary[2]} skipped (baseline {BASELINE_COLUMN}: "
        f"{_BASE[0]} / {_BASE[1]} / {_BASE[2]}); "
        f"{len(improvements)} improvements, {len(regressions)} regressions"
    )
    for case_id in improvements:
        print(f"  improvement: {case_id}")
    for case_id in regressions:
        print(f"  REGRESSION:  {case_id}")
    assert escaped == []
    assert tuple(improvements) == IMPROVEMENTS
    assert summary == EXPECTED_COUNTS
    assert regressions == []


def test_limbo_client_cases() -> None:
    """The CLIENT cases, which the baseline skipped, through a unitls server.

    There is no baseline to compare with: only `TLSError` may escape, and the cases
    where unitls misses limbo's `expected` result are pinned.
    """
    differences = []
    for case_id, case in CASES.items():
        if case["validation_kind"] != "CLIENT":
            continue
        if _result(case_id) != case["expected_result"]:
            differences.append(case_id)
    assert tuple(differences) == CLIENT_DIFFERENCES
