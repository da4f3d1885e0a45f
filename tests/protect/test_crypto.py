"""Crypto-shredding's foundation: per-node data keys wrapped in the store, AES-GCM bound to the
node, a keyed blind index, and keys destroyed at erasure so that neither the DuckDB file after a
checkpoint nor a PostgreSQL dump gives anything back. On both stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from dumps import pg_dump
from person_world import ANA, import_world, write_world
from sqlalchemy.engine import make_url

from surmesure.config import get_settings
from surmesure.protect import crypto
from surmesure.protect.crypto import KeyDestroyed, Keyring, blind_index
from surmesure.protect.erase import erase_person
from surmesure.store import Store
from surmesure.unify.profile import find_person

SECRET = "a-test-secret-of-some-length"
NOW = datetime(2026, 12, 4, 12, 0)
SECRETS = ["Zoé Rivière-Fontaine", "zoe.riviere@example.org", "12 rue des Lilas"]


def _sealed_table(store: Store) -> sa.Table:
    """A table of sealed values, as the converted store would hold them."""
    table = sa.Table(
        "sealed_values",
        sa.MetaData(),
        sa.Column("node_id", sa.BigInteger, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    table.drop(store.engine, checkfirst=True)
    table.create(store.engine)
    return table


def _seal_all(store: Store, keyring: Keyring, node_id: int) -> sa.Table:
    table = _sealed_table(store)
    with store.begin() as conn:
        for text in SECRETS:
            conn.execute(
                table.insert().values(
                    node_id=node_id, value=keyring.seal(conn, node_id, text, now=NOW)
                )
            )
    return table


def test_sealed_values_open_only_for_their_node_and_key(store: Store) -> None:
    keyring = Keyring(store, SECRET)
    with store.begin() as conn:
        a = keyring.seal(conn, 1, "Zoé", now=NOW)
        b = keyring.seal(conn, 1, "Zoé", now=NOW)
        other = keyring.seal(conn, 2, "Léo", now=NOW)
    assert a != b and b"Zo" not in a  # a fresh nonce each time, nothing readable
    fresh = Keyring(store, SECRET)  # no key in memory: read from the store and unwrapped
    with store.connect() as conn:
        assert fresh.open(conn, 1, a) == fresh.open(conn, 1, b) == "Zoé"
        assert fresh.open(conn, 2, other) == "Léo"
        with pytest.raises(ValueError, match="node 2"):
            fresh.open(conn, 2, a)  # node 1's value pasted on node 2's row
        tampered = a[:-1] + bytes([a[-1] ^ 1])
        with pytest.raises(ValueError):
            fresh.open(conn, 1, tampered)
        with pytest.raises(Exception):  # noqa: B017 - the wrapping key is wrong: InvalidTag
            Keyring(store, "another-secret-entirely").open(conn, 1, a)
    with store.begin() as conn:  # node 1's wrapped key copied onto node 2 does not unwrap
        conn.execute(
            sa.text(
                "UPDATE person_keys SET wrapped = (SELECT wrapped FROM person_keys "
                "WHERE node_id = 1) WHERE node_id = 2"
            )
        )
    with store.connect() as conn, pytest.raises(Exception):  # noqa: B017
        Keyring(store, SECRET).open(conn, 2, other)


def test_the_blind_index_is_keyed_and_kind_qualified() -> None:
    key = crypto.derive(SECRET, b"surmesure blind index")
    assert blind_index(key, "email", "zoe@example.org") == blind_index(
        key, "email", "zoe@example.org"
    )
    assert blind_index(key, "email", "zoe@example.org") != blind_index(
        key, "customer_id", "zoe@example.org"
    )
    other = crypto.derive("another-secret-entirely", b"surmesure blind index")
    assert blind_index(other, "email", "zoe@example.org") != blind_index(
        key, "email", "zoe@example.org"
    )
    assert key != crypto.derive(SECRET, b"surmesure person-key wrapping")


def test_the_duckdb_file_holds_no_value_and_a_destroyed_key_opens_nothing(
    duckdb_store: Store,
) -> None:
    store = duckdb_store
    keyring = Keyring(store, SECRET)
    table = _seal_all(store, keyring, 7)
    with store.connect() as conn:
        (wrapped,) = conn.execute(sa.text("SELECT wrapped FROM person_keys")).one()
        key = keyring.keys(conn, [7])[7]
    _checkpoint(store)
    path = Path(make_url(store.url).database or "")
    content = path.read_bytes()
    assert bytes(wrapped) in content  # the file does hold the wrapped key before erasure
    assert not any(s.encode() in content for s in SECRETS)
    assert key not in content  # only wrapped

    with store.begin() as conn:
        assert keyring.destroy(conn, [7]) == 1
    _checkpoint(store)

    # DuckDB frees the blocks of deleted rows without zeroing them: the wrapped key may
    # linger in the file until they are reused, useless without the encryption secret (hence
    # a key store outside the database file for the full promise; see protect/crypto.py)
    assert not any(s.encode() in path.read_bytes() for s in SECRETS)
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM person_keys")).scalar_one() == 0
        sealed = [bytes(v) for (v,) in conn.execute(sa.select(table.c.value))]
        assert len(sealed) == 3
        for value in sealed:
            with pytest.raises(KeyDestroyed):
                Keyring(store, SECRET).open(conn, 7, value)


def _checkpoint(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        conn.commit()


def test_a_destroyed_key_is_not_in_a_postgresql_dump(postgres_store: Store, tmp_path: Path) -> None:
    store = postgres_store
    keyring = Keyring(store, SECRET)
    _seal_all(store, keyring, 7)
    with store.connect() as conn:
        (wrapped,) = conn.execute(sa.text("SELECT wrapped FROM person_keys")).one()

    def dump() -> str:
        return pg_dump(store, tmp_path / "dump.sql")

    before = dump()
    assert bytes(wrapped).hex() in before
    assert not any(s in before for s in SECRETS)
    with store.begin() as conn:
        keyring.destroy(conn, [7])
    assert bytes(wrapped).hex() not in dump()


def test_erasure_destroys_the_keys_of_every_node_of_the_person(
    store: Store, tmp_path: Path
) -> None:
    import_world(store, write_world(tmp_path))
    secret = get_settings().encryption_key
    keyring = crypto.keyring(store, secret)
    with store.begin() as conn:
        nodes = find_person(conn, f"email:{ANA['email']}").nodes
        sealed = {n: keyring.seal(conn, n, ANA["email"], now=NOW) for n in nodes}
        bo = find_person(conn, "email:bo.durand@example.net").person_id
        kept = keyring.seal(conn, bo, "Bo", now=NOW)
    assert len(nodes) == 2

    erasure = erase_person(store, f"email:{ANA['email']}", confirmed=True)

    assert erasure.keys_destroyed == 2
    with store.connect() as conn:
        for node, value in sealed.items():
            with pytest.raises(KeyDestroyed):
                keyring.open(conn, node, value)  # forgotten in this process too
            with pytest.raises(KeyDestroyed):
                Keyring(store, secret).open(conn, node, value)
        assert Keyring(store, secret).open(conn, bo, kept) == "Bo"


def test_sealing_in_batches_opens_per_node_and_a_rolled_back_key_is_never_used(
    store: Store,
) -> None:
    keyring = Keyring(store, SECRET)
    with store.begin() as conn:
        sealed = keyring.seal_many(conn, [1, 2, None, 1], ["un", "deux", "x", None], now=NOW)
    assert sealed[2] is None and sealed[3] is None
    with store.connect() as conn:
        opened = Keyring(store, SECRET).open_many(conn, [1, 2, None, 1], sealed)
        assert opened == ["un", "deux", None, None]
        with pytest.raises(ValueError, match="does not open for node 2"):
            keyring.open_many(conn, [2], [sealed[0]])  # moved to another node's row

    class Failed(Exception):
        pass

    with pytest.raises(Failed), store.begin() as conn:
        lost = keyring.seal_many(conn, [3], ["trois"], now=NOW)[0]
        raise Failed
    with store.begin() as conn:
        again = keyring.seal_many(conn, [3], ["trois"], now=NOW)[0]
    with store.connect() as conn:
        fresh = Keyring(store, SECRET)
        assert fresh.open_many(conn, [3], [again]) == ["trois"]
        with pytest.raises(ValueError):
            fresh.open_many(conn, [3], [lost])  # sealed under the key that was rolled back
