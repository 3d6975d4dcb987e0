"""TLSClientConfiguration and TLSServerConfiguration: validation, immutability, equality,
hashing, pickling and repr. No sockets, no OpenSSL."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import unitls
from unitls import (
    CipherSuite,
    NextProtocol,
    SigningChain,
    TLSClientConfiguration,
    TLSServerConfiguration,
    TLSVersion,
    TrustStore,
)

CONFIGS = [TLSClientConfiguration, TLSServerConfiguration]
FIELDS = (
    "certificate_chain",
    "ciphers",
    "inner_protocols",
    "lowest_supported_version",
    "highest_supported_version",
    "trust_store",
)


def chain(name: bytes = b"leaf") -> SigningChain:
    return SigningChain(
        leaf=(unitls.Certificate.from_buffer(name), unitls.PrivateKey.from_buffer(b"key")),
        chain=[unitls.Certificate.from_buffer(b"intermediate")],
    )


def chains_for(config_type: type[Any]) -> Any:
    """What `certificate_chain` takes: one chain (client) or a sequence (server)."""
    return chain() if config_type is TLSClientConfiguration else [chain()]


# -- defaults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("config_type", CONFIGS)
def test_defaults(config_type):
    config = config_type()
    assert config.certificate_chain is None
    assert config.ciphers is None
    assert config.inner_protocols == ()
    assert config.lowest_supported_version is None
    assert config.highest_supported_version is None
    assert config.trust_store is None


@pytest.mark.parametrize("config_type", CONFIGS)
def test_keyword_and_positional_arguments_agree(config_type):
    args = (
        chains_for(config_type),
        [CipherSuite.TLS_AES_128_GCM_SHA256],
        [NextProtocol.H2],
        TLSVersion.TLSv1_2,
        TLSVersion.TLSv1_3,
        TrustStore.from_buffer(b"ca"),
    )
    assert config_type(*args) == config_type(**dict(zip(FIELDS, args, strict=True)))


# -- type errors name the field -----------------------------------------------------------------


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ciphers", "TLS_AES_128_GCM_SHA256"),
        ("ciphers", b"\x13\x01"),
        ("ciphers", 0x1301),
        ("ciphers", {0x1301}),
        ("ciphers", ["TLS_AES_128_GCM_SHA256"]),
        ("ciphers", [0x1301, 1.5]),
        ("ciphers", [True]),
        ("ciphers", [False, 0x1301]),
        ("inner_protocols", "h2"),
        ("inner_protocols", b"h2"),
        ("inner_protocols", ["h2"]),
        ("inner_protocols", [2]),
        ("inner_protocols", iter([b"h2"])),
        ("lowest_supported_version", "TLSv1.2"),
        ("lowest_supported_version", 0x0303),
        ("highest_supported_version", "TLSv1.3"),
        ("highest_supported_version", True),
        ("trust_store", "/etc/ssl/certs/ca-certificates.crt"),
        ("trust_store", unitls.Certificate.from_buffer(b"ca")),
    ],
)
def test_wrong_types_raise_type_error_naming_the_field(config_type, field, value):
    with pytest.raises(TypeError, match=field):
        config_type(**{field: value})


@pytest.mark.parametrize(
    "value", [[chain()], (chain(),), "chain", unitls.Certificate.from_buffer(b"x")]
)
def test_client_certificate_chain_must_be_one_signing_chain(value):
    with pytest.raises(TypeError, match="certificate_chain must be a SigningChain"):
        TLSClientConfiguration(certificate_chain=value)


@pytest.mark.parametrize("value", [chain(), 42, {chain()}])
def test_server_certificate_chain_must_be_a_sequence(value):
    with pytest.raises(TypeError, match="certificate_chain must be a sequence of SigningChain"):
        TLSServerConfiguration(certificate_chain=value)


@pytest.mark.parametrize("value", ["chain", b"chain"])
def test_server_certificate_chain_is_not_a_string(value):
    with pytest.raises(TypeError, match="certificate_chain"):
        TLSServerConfiguration(certificate_chain=value)


@pytest.mark.parametrize("item", [unitls.Certificate.from_buffer(b"x"), None, "chain"])
def test_server_certificate_chain_items_must_be_signing_chains(item):
    with pytest.raises(TypeError, match="certificate_chain items must be SigningChain"):
        TLSServerConfiguration(certificate_chain=[chain(), item])


# -- value errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("config_type", CONFIGS)
def test_lowest_above_highest_is_refused(config_type):
    with pytest.raises(ValueError, match=r"TLSv1\.3 is above highest_supported_version TLSv1\.2"):
        config_type(
            lowest_supported_version=TLSVersion.TLSv1_3,
            highest_supported_version=TLSVersion.TLSv1_2,
        )


@pytest.mark.parametrize("config_type", CONFIGS)
def test_open_ended_versions_cannot_be_used_backwards(config_type):
    with pytest.raises(ValueError, match="lowest_supported_version cannot be MAXIMUM_SUPPORTED"):
        config_type(lowest_supported_version=TLSVersion.MAXIMUM_SUPPORTED)
    with pytest.raises(ValueError, match="highest_supported_version cannot be MINIMUM_SUPPORTED"):
        config_type(highest_supported_version=TLSVersion.MINIMUM_SUPPORTED)


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize(
    ("lowest", "highest"),
    [
        (TLSVersion.MINIMUM_SUPPORTED, TLSVersion.MAXIMUM_SUPPORTED),
        (TLSVersion.TLSv1_2, TLSVersion.TLSv1_2),
        (TLSVersion.TLSv1_3, TLSVersion.TLSv1_3),
        (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3),
        (TLSVersion.MINIMUM_SUPPORTED, TLSVersion.TLSv1_2),
        (TLSVersion.TLSv1_3, TLSVersion.MAXIMUM_SUPPORTED),
        (None, TLSVersion.TLSv1_2),
        (TLSVersion.TLSv1_3, None),
    ],
)
def test_valid_version_ranges(config_type, lowest, highest):
    config = config_type(lowest_supported_version=lowest, highest_supported_version=highest)
    assert config.lowest_supported_version is lowest
    assert config.highest_supported_version is highest


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize("protocol", [b"", bytearray(), b"x" * 256])
def test_alpn_protocols_must_be_1_to_255_bytes(config_type, protocol):
    with pytest.raises(ValueError, match=r"inner_protocols: .* must be 1 to 255 bytes long"):
        config_type(inner_protocols=[NextProtocol.H2, protocol])


@pytest.mark.parametrize("config_type", CONFIGS)
def test_alpn_protocol_of_255_bytes_is_fine(config_type):
    longest = b"x" * 255
    assert config_type(inner_protocols=[longest]).inner_protocols == (longest,)


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize("cipher", [-1, 0x10000, 2**64])
def test_cipher_ids_must_be_16_bit(config_type, cipher):
    with pytest.raises(ValueError, match=r"is not a 16-bit cipher suite id \(0\.\.0xFFFF\)"):
        config_type(ciphers=[cipher])


@pytest.mark.parametrize("config_type", CONFIGS)
def test_cipher_id_bounds_are_inclusive(config_type):
    assert config_type(ciphers=[0, 0xFFFF]).ciphers == (0, 0xFFFF)


# -- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("config_type", CONFIGS)
def test_known_ids_become_members_and_unknown_ids_stay_ints(config_type):
    config = config_type(ciphers=[0x1301, CipherSuite.TLS_AES_256_GCM_SHA384, 0xC05D])
    assert config.ciphers == (
        CipherSuite.TLS_AES_128_GCM_SHA256,
        CipherSuite.TLS_AES_256_GCM_SHA384,
        0xC05D,
    )
    assert isinstance(config.ciphers[0], CipherSuite)
    assert type(config.ciphers[2]) is int


@pytest.mark.parametrize("config_type", CONFIGS)
def test_known_protocols_become_members_and_others_stay_bytes(config_type):
    config = config_type(inner_protocols=[b"h2", bytearray(b"http/1.1"), memoryview(b"bla")])
    assert config.inner_protocols == (NextProtocol.H2, NextProtocol.HTTP1, b"bla")
    assert type(config.inner_protocols[2]) is bytes


@pytest.mark.parametrize("config_type", CONFIGS)
def test_empty_cipher_list_is_kept_distinct_from_none(config_type):
    config = config_type(ciphers=[])
    assert config.ciphers == ()
    assert config != config_type()


@pytest.mark.parametrize("config_type", CONFIGS)
def test_sequences_are_copied_into_tuples(config_type):
    ciphers = [CipherSuite.TLS_AES_128_GCM_SHA256]
    protocols = [NextProtocol.H2]
    config = config_type(ciphers=ciphers, inner_protocols=protocols)
    ciphers.append(CipherSuite.TLS_AES_256_GCM_SHA384)
    protocols.clear()
    assert config.ciphers == (CipherSuite.TLS_AES_128_GCM_SHA256,)
    assert config.inner_protocols == (NextProtocol.H2,)
    assert isinstance(config.ciphers, tuple)
    assert isinstance(config.inner_protocols, tuple)


def test_server_chains_are_copied_but_kept_as_the_same_objects():
    first, second = chain(b"a"), chain(b"b")
    chains = [first, second]
    config = TLSServerConfiguration(certificate_chain=chains)
    chains.pop()
    assert isinstance(config.certificate_chain, tuple)
    assert config.certificate_chain[0] is first
    assert config.certificate_chain[1] is second


def test_client_credentials_are_kept_as_the_same_objects():
    signing, store = chain(), TrustStore.from_buffer(b"ca")
    config = TLSClientConfiguration(certificate_chain=signing, trust_store=store)
    assert config.certificate_chain is signing
    assert config.trust_store is store


# -- immutability -------------------------------------------------------------------------------


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize("field", [*FIELDS, "_ciphers", "new_attribute"])
def test_configurations_are_immutable(config_type, field):
    config = config_type(ciphers=[0x1301])
    with pytest.raises(AttributeError, match="immutable"):
        setattr(config, field, None)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(config, field)
    assert config.ciphers == (CipherSuite.TLS_AES_128_GCM_SHA256,)


@pytest.mark.parametrize("config_type", CONFIGS)
def test_configurations_have_no_instance_dict(config_type):
    assert not hasattr(config_type(), "__dict__")


# -- equality, hashing, pickling, repr ------------------------------------------------------------


def full(config_type: type[Any]) -> Any:
    return config_type(
        certificate_chain=chains_for(config_type),
        ciphers=[0x1302, 0xC02F, 0xC05D],
        inner_protocols=[NextProtocol.H2, b"http/1.1", b"custom"],
        lowest_supported_version=TLSVersion.TLSv1_2,
        highest_supported_version=TLSVersion.MAXIMUM_SUPPORTED,
        trust_store=TrustStore.from_file("/ca.pem"),
    )


@pytest.mark.parametrize("config_type", CONFIGS)
def test_equal_configurations_hash_equal_and_key_a_dict(config_type):
    a, b = full(config_type), full(config_type)
    assert a is not b
    assert a == b
    assert hash(a) == hash(b)
    cache = {a: "context"}
    assert cache[b] == "context"
    assert len({a, b, config_type()}) == 2


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ciphers", [0x1302]),
        ("inner_protocols", [NextProtocol.H2]),
        ("lowest_supported_version", TLSVersion.TLSv1_3),
        ("highest_supported_version", TLSVersion.TLSv1_3),
        ("trust_store", TrustStore.system()),
    ],
)
def test_any_field_difference_makes_them_unequal(config_type, field, value):
    base = full(config_type)
    kwargs = {name: getattr(base, name) for name in FIELDS}
    kwargs[field] = value
    assert config_type(**kwargs) != base


def test_credentials_compare_by_value():
    a = TLSClientConfiguration(certificate_chain=chain(b"x"), trust_store=TrustStore.system())
    b = TLSClientConfiguration(certificate_chain=chain(b"x"), trust_store=TrustStore())
    c = TLSClientConfiguration(certificate_chain=chain(b"y"), trust_store=TrustStore())
    assert a == b
    assert hash(a) == hash(b)
    assert a != c


def test_client_and_server_configurations_never_compare_equal():
    assert TLSClientConfiguration() != TLSServerConfiguration()
    assert TLSClientConfiguration() != object()
    assert TLSClientConfiguration().__eq__(42) is NotImplemented


@pytest.mark.parametrize("config_type", CONFIGS)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(config_type, protocol):
    original = full(config_type)
    restored = pickle.loads(pickle.dumps(original, protocol=protocol))
    assert type(restored) is config_type
    assert restored == original
    assert hash(restored) == hash(original)
    assert restored.ciphers == original.ciphers


@pytest.mark.parametrize("config_type", CONFIGS)
def test_copy_and_deepcopy(config_type):
    original = full(config_type)
    assert copy.copy(original) == original
    assert copy.deepcopy(original) == original


@pytest.mark.parametrize("config_type", CONFIGS)
def test_repr_names_every_field(config_type):
    text = repr(full(config_type))
    assert text.startswith(f"{config_type.__name__}(certificate_chain=")
    for name in FIELDS:
        assert f"{name}=" in text
    # Each value is shown under its own name.
    assert "ciphers=(<CipherSuite.TLS_AES_256_GCM_SHA384: 4866>, " in text
    assert "inner_protocols=(<NextProtocol.H2: b'h2'>, <NextProtocol.HTTP1: " in text
    assert "lowest_supported_version=<TLSVersion.TLSv1_2: 'TLSv1.2'>" in text
    assert "highest_supported_version=<TLSVersion.MAXIMUM_SUPPORTED: " in text
    assert "trust_store=TrustStore.from_file('/ca.pem')" in text
    assert "b'key'" not in text  # key material never shows up in a repr


def test_repr_of_the_default_configuration():
    assert repr(TLSClientConfiguration()) == (
        "TLSClientConfiguration(certificate_chain=None, ciphers=None, inner_protocols=(), "
        "lowest_supported_version=None, highest_supported_version=None, trust_store=None)"
    )


# -- properties --------------------------------------------------------------------------------


@given(
    ciphers=st.lists(st.integers(0, 0xFFFF), max_size=8),
    protocols=st.lists(st.binary(min_size=1, max_size=255), max_size=4),
)
def test_any_valid_input_is_accepted_and_round_trips(ciphers, protocols):
    a = TLSClientConfiguration(ciphers=ciphers, inner_protocols=protocols)
    b = TLSClientConfiguration(ciphers=tuple(ciphers), inner_protocols=tuple(protocols))
    assert a.ciphers is not None
    assert [int(c) for c in a.ciphers] == ciphers
    assert [p.value if isinstance(p, NextProtocol) else p for p in a.inner_protocols] == protocols
    assert a == b
    assert hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a
