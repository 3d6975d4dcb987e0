from __future__ import annotations

import unitls
from helpers import make_pair


def test_in_memory_round_trip(client_config, server_config):
    pair = make_pair(client_config, server_config)
    assert pair.c2s(b"ping") == b"ping"
    assert pair.s2c(b"pong" * 10000) == b"pong" * 10000
    assert pair.client.negotiated_tls_version is unitls.TLSVersion.TLSv1_3
