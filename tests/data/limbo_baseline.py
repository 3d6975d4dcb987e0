"""Record the x509-limbo real-handshake baseline for the OpenSSL that pyOpenSSL uses.

    python tests/data/limbo_baseline.py            # adds/updates a column, prints changes

The reference verifier is plain pyOpenSSL, configured as REFERENCE.md §4.3 describes
(VERIFY_PEER, X509_STRICT | PARTIAL_CHAIN, the case's CRLs with CRL_CHECK, the case's
validation time and depth, host or IP on the connection's verify param with
NO_PARTIAL_WILDCARDS | NEVER_CHECK_SUBJECT) against a TLS 1.3 server at @SECLEVEL=0.
It writes `pyopenssl_tls_handshake_openssl_X_Y_Z` into limbo-openssl-baseline.json;
cases it cannot run (CLIENT cases, no private key) keep SKIPPED.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import pathlib
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from OpenSSL import SSL, crypto
from OpenSSL._util import lib

DATA = pathlib.Path(__file__).parent
HOST_FLAGS = lib.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | lib.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT


def _server(case: dict) -> SSL.Connection:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        ctx.use_certificate(x509.load_pem_x509_certificate(case["peer_certificate"].encode()))
        for pem in case["untrusted_intermediates"]:
            ctx.add_extra_chain_cert(x509.load_pem_x509_certificate(pem.encode()))
    key = serialization.load_pem_private_key(case["peer_certificate_key"].encode(), None)
    ctx.use_privatekey(key)
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    return conn


def _client(case: dict) -> SSL.Connection:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_verify(SSL.VERIFY_PEER)
    store = ctx.get_cert_store()
    flags = crypto.X509StoreFlags.X509_STRICT | crypto.X509StoreFlags.PARTIAL_CHAIN
    for pem in case["trusted_certs"]:
        try:
            store.add_cert(
                crypto.X509.from_cryptography(x509.load_pem_x509_certificate(pem.encode()))
            )
        except crypto.Error:
            pass  # duplicate
    if case.get("crls"):
        for pem in case["crls"]:
            store.add_crl(x509.load_pem_x509_crl(pem.encode()))
        flags |= crypto.X509StoreFlags.CRL_CHECK
    store.set_flags(flags)
    if case["validation_time"]:
        store.set_time(datetime.datetime.fromisoformat(case["validation_time"]))
    if case["max_chain_depth"] is not None:
        ctx.set_verify_depth(case["max_chain_depth"])
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    name = case["expected_peer_name"]
    if name:
        param = lib.SSL_get0_param(conn._ssl)
        lib.X509_VERIFY_PARAM_set_hostflags(param, HOST_FLAGS)
        if name["kind"] == "IP":
            packed = ipaddress.ip_address(name["value"]).packed
            lib.X509_VERIFY_PARAM_set1_ip(param, packed, len(packed))
        else:
            value = name["value"].encode()
            lib.X509_VERIFY_PARAM_set1_host(param, value, len(value))
            conn.set_tlsext_host_name(value)
    return conn


def run(case: dict) -> str:
    server, client = _server(case), _client(case)
    done = {"client": False, "server": False}
    for _ in range(20):
        try:
            client.do_handshake()
            done["client"] = True
        except SSL.WantReadError:
            pass
        except SSL.Error:
            return "FAILURE"
        try:
            server.do_handshake()
            done["server"] = True
        except (SSL.WantReadError, SSL.Error):
            pass
        for source, dest in ((client, server), (server, client)):
            while True:
                try:
                    dest.bio_write(source.bio_read(65536))
                except SSL.WantReadError:
                    break
        if all(done.values()):
            return "SUCCESS"
    raise RuntimeError(f"{case['id']}: handshake did not finish")


def main() -> None:
    version = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).split()[1].decode()
    column = "pyopenssl_tls_handshake_openssl_" + "_".join(version.split(".")[:3])
    cases = {c["id"]: c for c in json.loads((DATA / "limbo.json").read_text())["testcases"]}
    path = DATA / "limbo-openssl-baseline.json"
    baseline = json.loads(path.read_text())
    for row in baseline["results"]:
        case = cases[row["id"]]
        runnable = case["validation_kind"] == "SERVER" and case["peer_certificate_key"]
        new = run(case) if runnable else "SKIPPED"
        old = row.get(column)
        if old is not None and old != new:
            print(f"{row['id']}: {old} -> {new}")
        row[column] = new
    path.write_text(json.dumps(baseline, indent=1) + "\n")
    print(f"wrote column {column} for OpenSSL {version}")


if __name__ == "__main__":
    main()
