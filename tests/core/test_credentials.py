"""Certificate, PrivateKey, TrustStore and SigningChain: sources, validation, value semantics.
Nothing is parsed here, so plain bytes stand in for PEM."""

from __future__ import annotations

import copy
import pathlib
import pickle

import pytest

from unitls import Certificate, PrivateKey, SigningChain, TrustStore

SOURCES = [Certificate, PrivateKey, TrustStore]
NEEDS_A_SOURCE = [Certificate, PrivateKey]


# -- exactly one source -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NEEDS_A_SOURCE)
def test_certificate_and_key_need_a_source(kind):
    with pytest.raises(ValueError, match=f"{kind.__name__} cannot be empty"):
        kind()


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"buffer": b"x", "path": "p"}, "buffer and path"),
        ({"buffer": b"x", "id": b"i"}, "buffer and id"),
        ({"path": "p", "id": b"i"}, "path and id"),
        ({"buffer": b"x", "path": "p", "id": b"i"}, "buffer and path and id"),
    ],
)
def test_more_than_one_source_is_refused(kind, given, named):
    with pytest.raises(ValueError, match=f"takes exactly one of buffer, path or id, not {named}"):
        kind(**given)


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("buffer", "-----BEGIN CERTIFICATE-----"),
        ("buffer", 42),
        ("path", 42),
        ("path", ["a.pem"]),
        ("id", "pkcs11:token"),
        ("id", 7),
    ],
)
def test_wrong_source_types_raise_type_error(kind, field, value):
    with pytest.raises(TypeError, match=f"{kind.__name__} {field} must be"):
        kind(**{field: value})


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize(("field", "value"), [("buffer", b""), ("path", ""), ("path", b"")])
def test_empty_buffers_and_paths_are_refused(kind, field, value):
    with pytest.raises(ValueError, match=f"{kind.__name__} {field} must not be empty"):
        kind(**{field: value})


# -- constructors -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SOURCES)
def test_from_buffer(kind):
    obj = kind.from_buffer(b"pem bytes")
    assert type(obj) is kind
    assert (obj.buffer, obj.path, obj.id) == (b"pem bytes", None, None)
    assert obj == kind(buffer=b"pem bytes")


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("make", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_buffers_are_copied_to_bytes(kind, make):
    buffer = make(bytearray(b"abc"))
    obj = kind.from_buffer(buffer)
    assert type(obj.buffer) is bytes
    assert obj.buffer == b"abc"
    buffer[0] = ord("z")  # the caller's buffer changes; the recorded bytes do not
    assert obj.buffer == b"abc"


@pytest.mark.parametrize("kind", SOURCES)
def test_from_file_with_str_bytes_and_pathlike(kind, tmp_path):
    target = tmp_path / "cert.pem"
    as_str = kind.from_file(str(target))
    as_path = kind.from_file(target)
    as_bytes = kind.from_file(bytes(target))
    assert as_str.path == str(target)
    assert as_path.path == str(target)  # os.fspath: PathLike becomes str
    assert as_bytes.path == bytes(target)
    assert as_str == as_path
    assert (as_path.buffer, as_path.id) == (None, None)


@pytest.mark.parametrize("kind", SOURCES)
def test_custom_pathlike(kind):
    class Where:
        def __fspath__(self) -> str:
            return "/etc/where.pem"

    assert kind.from_file(Where()).path == "/etc/where.pem"
    assert kind(path=pathlib.PurePosixPath("/x.pem")).path == "/x.pem"


@pytest.mark.parametrize("kind", SOURCES)
def test_from_id(kind):
    obj = kind.from_id(b"pkcs11:object=server")
    assert (obj.buffer, obj.path, obj.id) == (None, None, b"pkcs11:object=server")


def test_from_id_accepts_an_empty_id():
    # Only buffers and paths must be non-empty; an id is opaque to unitls.
    assert Certificate.from_id(b"").id == b""


# -- the system trust store ---------------------------------------------------------------------


def test_trust_store_without_a_source_is_the_system_store():
    assert TrustStore() == TrustStore.system()
    assert hash(TrustStore()) == hash(TrustStore.system())
    assert TrustStore.system().is_system()
    assert TrustStore().is_system()
    assert (TrustStore().buffer, TrustStore().path, TrustStore().id) == (None, None, None)
    assert repr(TrustStore()) == "TrustStore.system()"


@pytest.mark.parametrize(
    "store",
    [TrustStore.from_buffer(b"ca"), TrustStore.from_file("/ca.pem"), TrustStore.from_id(b"x")],
)
def test_other_trust_stores_are_not_the_system_store(store):
    assert not store.is_system()
    assert store != TrustStore.system()


# -- value semantics ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SOURCES)
def test_equality_and_hashing(kind):
    a, b, c = kind.from_buffer(b"same"), kind.from_buffer(b"same"), kind.from_buffer(b"other")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert {a: 1}[b] == 1
    assert kind.from_file("x") != kind.from_buffer(b"x")
    assert kind.from_id(b"x") != kind.from_buffer(b"x")


def test_different_kinds_never_compare_equal():
    cert = Certificate.from_buffer(b"same")
    key = PrivateKey.from_buffer(b"same")
    store = TrustStore.from_buffer(b"same")
    assert cert != key
    assert key != store
    assert cert != store
    assert cert != b"same"
    assert cert.__eq__(key) is NotImplemented


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("field", ["buffer", "path", "id", "_buffer", "anything"])
def test_sources_are_immutable(kind, field):
    obj = kind.from_buffer(b"x")
    with pytest.raises(AttributeError, match="immutable"):
        setattr(obj, field, b"y")
    with pytest.raises(AttributeError, match="immutable"):
        delattr(obj, field)
    assert obj.buffer == b"x"
    assert not hasattr(obj, "__dict__")


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("factory", ["from_buffer", "from_file", "from_id"])
def test_pickle_and_copy_round_trip(kind, factory):
    arg = "/x.pem" if factory == "from_file" else b"data"
    original = getattr(kind, factory)(arg)
    for restored in (pickle.loads(pickle.dumps(original)), copy.deepcopy(original)):
        assert type(restored) is kind
        assert restored == original


def test_system_trust_store_pickles():
    assert pickle.loads(pickle.dumps(TrustStore.system())).is_system()


def test_reprs_show_the_source_but_never_the_bytes():
    secret = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"
    assert repr(PrivateKey.from_buffer(secret)) == f"PrivateKey.from_buffer(<{len(secret)} bytes>)"
    assert "secret" not in repr(PrivateKey.from_buffer(secret))
    assert repr(Certificate.from_file("/c.pem")) == "Certificate.from_file('/c.pem')"
    assert repr(TrustStore.from_id(b"store")) == "TrustStore.from_id(b'store')"


# -- SigningChain -------------------------------------------------------------------------------


def leaf(name: bytes = b"leaf") -> tuple[Certificate, PrivateKey]:
    return Certificate.from_buffer(name), PrivateKey.from_buffer(b"key-" + name)


def test_signing_chain_holds_leaf_and_intermediates():
    cert, key = leaf()
    intermediate = Certificate.from_buffer(b"intermediate")
    signing = SigningChain(leaf=(cert, key), chain=[intermediate])
    assert signing.leaf == (cert, key)
    assert signing.leaf[0] is cert
    assert signing.leaf[1] is key
    assert signing.chain == (intermediate,)
    assert signing.chain[0] is intermediate


def test_signing_chain_defaults_and_key_may_be_none():
    cert = Certificate.from_buffer(b"leaf")
    signing = SigningChain(leaf=(cert, None))
    assert signing.leaf == (cert, None)
    assert signing.chain == ()


def test_signing_chain_copies_its_chain_into_a_tuple():
    intermediates = [Certificate.from_buffer(b"i1")]
    signing = SigningChain(leaf=leaf(), chain=intermediates)
    intermediates.append(Certificate.from_buffer(b"i2"))
    assert signing.chain == (Certificate.from_buffer(b"i1"),)
    generated = SigningChain(leaf=leaf(), chain=(c for c in intermediates))
    assert len(generated.chain) == 2


@pytest.mark.parametrize(
    ("leaf_value", "message"),
    [
        ([Certificate.from_buffer(b"c"), None], "leaf must be a"),
        ((Certificate.from_buffer(b"c"),), "leaf must be a"),
        ((Certificate.from_buffer(b"c"), None, None), "leaf must be a"),
        (Certificate.from_buffer(b"c"), "leaf must be a"),
        ((b"cert", None), "leaf certificate must be a Certificate"),
        ((PrivateKey.from_buffer(b"k"), None), "leaf certificate must be a Certificate"),
        ((Certificate.from_buffer(b"c"), b"key"), "leaf key must be a PrivateKey or None"),
        (
            (Certificate.from_buffer(b"c"), Certificate.from_buffer(b"k")),
            "leaf key must be a PrivateKey or None",
        ),
    ],
)
def test_signing_chain_validates_its_leaf(leaf_value, message):
    with pytest.raises(TypeError, match=message):
        SigningChain(leaf=leaf_value)


@pytest.mark.parametrize("item", [b"intermediate", PrivateKey.from_buffer(b"k"), None])
def test_signing_chain_validates_its_chain(item):
    with pytest.raises(TypeError, match="chain items must be Certificates"):
        SigningChain(leaf=leaf(), chain=[Certificate.from_buffer(b"ok"), item])


def test_signing_chain_value_semantics():
    a = SigningChain(leaf=leaf(), chain=[Certificate.from_buffer(b"i")])
    b = SigningChain(leaf=leaf(), chain=(Certificate.from_buffer(b"i"),))
    c = SigningChain(leaf=leaf(b"other"))
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != leaf()
    assert {a: 1}[b] == 1
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(a) == a


@pytest.mark.parametrize("field", ["leaf", "chain", "_leaf", "anything"])
def test_signing_chain_is_immutable(field):
    signing = SigningChain(leaf=leaf())
    with pytest.raises(AttributeError, match="immutable"):
        setattr(signing, field, None)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(signing, field)
    assert not hasattr(signing, "__dict__")


def test_signing_chain_repr_hides_key_bytes():
    text = repr(SigningChain(leaf=leaf(), chain=[Certificate.from_file("/i.pem")]))
    assert text.startswith("SigningChain(leaf=(Certificate.from_buffer(<4 bytes>), ")
    assert "PrivateKey.from_buffer(<8 bytes>)" in text
    assert "Certificate.from_file('/i.pem')" in text
    assert "key-leaf" not in text
