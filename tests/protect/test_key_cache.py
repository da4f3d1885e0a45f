"""The data keys a process keeps in memory: a bounded number (least recently used first out),
read again by primary key past the bound, and never kept past an erasure, even by a reader
that fetched the key while the erasure was under way. On both stores."""

from __future__ import annotations

from datetime import datetime

import pytest

from surmesure.protect.crypto import KeyDestroyed, Keyring
from surmesure.store import Store

SECRET = "a-test-secret-of-some-length"
NOW = datetime(2026, 12, 4, 12, 0)


def test_a_key_ring_keeps_at_most_its_bound_and_still_opens_everything(store: Store) -> None:
    keyring = Keyring(store, SECRET, kept=2)
    with store.begin() as conn:
        sealed = keyring.seal_many(conn, [1, 2, 3, 1], ["Ana", "Bo", "Cy", "Ana B."], now=NOW)
    assert len(keyring._keys) == 2
    with store.connect() as conn:
        with store.statements() as sent:
            opened = keyring.open_many(conn, [1, 2, 3, 1], sealed)
        assert opened == ["Ana", "Bo", "Cy", "Ana B."]
        assert len(sent) == 1  # the keys not kept, in one query
        assert len(keyring._keys) == 2
        assert keyring.open_many(conn, [3], [sealed[2]]) == ["Cy"]
        with store.statements() as again:
            assert keyring.open_many(conn, [3], [sealed[2]]) == ["Cy"]
        assert again == []  # the most recently used is kept: nothing looked up


def test_a_key_fetched_during_an_erasure_is_forgotten_when_it_commits(store: Store) -> None:
    keyring = Keyring(store, SECRET)
    with store.begin() as conn:
        sealed = keyring.seal(conn, 5, "Zoé", now=NOW)
    with store.begin() as erasing:
        keyring.destroy(erasing, [5])
        # a reader (another thread of the process) fetches the key, still committed, before
        # the erasure commits: the ring keeps it for now
        with store.connect() as conn:
            assert keyring.open(conn, 5, sealed) == "Zoé"
    with store.connect() as conn, pytest.raises(KeyDestroyed):
        keyring.open(conn, 5, sealed)


def test_a_key_made_in_a_transaction_rolled_back_is_not_kept(store: Store) -> None:
    keyring = Keyring(store, SECRET)
    with pytest.raises(RuntimeError), store.begin() as conn:
        keyring.seal(conn, 9, "Léo", now=NOW)
        raise RuntimeError("the batch fails")
    with store.connect() as conn:
        assert keyring.keys(conn, [9]) == {}


def test_a_key_destroyed_by_another_process_is_forgotten_at_the_next_dispatch_round(
    store: Store,
) -> None:
    from surmesure.config import get_settings
    from surmesure.dispatch.background import Background
    from surmesure.protect import atrest
    from surmesure.store import schema

    with store.connect() as conn:
        server = atrest.keyring(conn)  # the key ring the server's decisions use
        server.follow_erasures(conn)
    with store.begin() as conn:
        sealed = server.seal(conn, 11, "Inès", now=NOW)
    # another process (its own key ring, nothing shared in memory) erases node 11
    other = Keyring(store, get_settings().encryption_key)
    with store.begin() as conn:
        assert other.destroy(conn, [11]) == 1
        conn.execute(
            schema.suppressions.insert().values(
                identifier_hash="ab" * 32, kind="email", erased_at=NOW, reason="erasure requested"
            )
        )
    with store.connect() as conn:
        assert server.open(conn, 11, sealed) == "Inès"  # still kept by the server
    Background(store, get_settings())._round()
    with store.connect() as conn:
        with pytest.raises(KeyDestroyed):
            server.open(conn, 11, sealed)
        assert server.follow_erasures(conn) is False  # nothing new since


def test_sealing_for_people_known_to_have_keys_reads_them_and_makes_only_the_missing(
    store: Store,
) -> None:
    """A decision log seals for people who have keys: their keys are read (no key made for
    each, to clash on insert), and a node without one still gets one, kept across rings."""
    first = Keyring(store, SECRET, kept=10)
    with store.begin() as conn:
        before = first.seal_many(conn, [1, 2], ["Ana", "Bo"], now=NOW)
    ring = Keyring(store, SECRET, kept=10)  # another process: nothing kept
    with store.begin() as conn:
        with store.statements() as sent:
            sealed = ring.seal_many(conn, [1, 2], ["Ana again", "Bo again"], now=NOW, known=True)
        assert len(sent) == 1 and sent[0].lstrip().upper().startswith("SELECT")
        more = ring.seal_many(conn, [2, 7], ["Bo", "Eve"], now=NOW, known=True)
        assert set(Keyring(store, SECRET).keys(conn, [1, 2, 7])) == {1, 2, 7}  # 7's is made
    other = Keyring(store, SECRET)
    with store.connect() as conn:
        assert other.open_many(conn, [1, 2, 1, 2, 2, 7], [*before, *sealed, *more]) == [
            "Ana", "Bo", "Ana again", "Bo again", "Bo", "Eve",
        ]  # fmt: skip


def test_keys_held_whole_seal_and_open_without_a_read_and_never_a_destroyed_one(
    store: Store,
) -> None:
    """A server holding everyone packed holds their keys too (some 40 bytes each): a decision
    sealed for anyone reads no key, beyond the few the ring keeps; a key destroyed here is
    never taken from those held."""
    with store.begin() as conn:
        before = Keyring(store, SECRET).seal_many(
            conn, [1, 2, 3, 40], ["Ana", "Bo", "Cy", "Dee"], now=NOW
        )
    ring = Keyring(store, SECRET, kept=1)
    with store.connect() as conn:
        nodes, keys = ring.keys_between(conn, 1, 3)  # a span of ids, in one read
    assert nodes.tolist() == [1, 2, 3] and len(keys) == 3 * 32
    assert ring.hold(nodes, keys, ring.epoch)
    with store.begin() as conn:
        with store.statements() as sent:
            sealed = ring.seal_many(conn, [1, 2, 3], ["Ana!", "Bo!", "Cy!"], now=NOW, known=True)
            opened = ring.open_many(conn, [1, 2, 3, 1], [*before[:3], sealed[0]])
        assert sent == [] and opened == ["Ana", "Bo", "Cy", "Ana!"]
        assert ring.open_many(conn, [40], [before[3]]) == ["Dee"]  # not held: read
    with store.begin() as conn:
        assert ring.destroy(conn, [2]) == 1
    with store.connect() as conn:
        assert ring.open_many(conn, [1, 2], [sealed[0], sealed[1]]) == ["Ana!", None]
        with pytest.raises(KeyDestroyed):
            ring.open(conn, 2, sealed[1])


def test_keys_read_before_an_erasure_elsewhere_are_not_held(store: Store) -> None:
    from surmesure.store import schema

    with store.begin() as conn:
        Keyring(store, SECRET).seal_many(conn, [1, 2], ["Ana", "Bo"], now=NOW)
    ring = Keyring(store, SECRET)
    with store.connect() as conn:
        ring.follow_erasures(conn)
        epoch = ring.epoch
        nodes, keys = ring.keys_between(conn, 1, 2)
    with store.begin() as conn:  # meanwhile, another process erases node 2
        assert Keyring(store, SECRET).destroy(conn, [2]) == 1
        conn.execute(
            schema.suppressions.insert().values(
                identifier_hash="cd" * 32, kind="email", erased_at=NOW, reason="erasure requested"
            )
        )
    with store.connect() as conn:
        assert ring.follow_erasures(conn) is True
    assert ring.hold(nodes, keys, epoch) is False  # read before it: node 2's key is gone
    with store.connect() as conn:
        assert set(ring.keys(conn, [1, 2])) == {1}
