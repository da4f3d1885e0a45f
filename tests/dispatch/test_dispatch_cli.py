"""``surmesure dispatch status``, ``drain`` and ``run``, and the dispatch setting."""

from __future__ import annotations

import pydantic
import pytest
from dispatch_helpers import save_viewers, store_events

from conftest import invoke, invoke_json
from surmesure.config import Settings
from surmesure.store import Store


def test_status_shows_what_is_left_and_drain_hands_it_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_viewers(store)
    store_events(store, 3)
    before = invoke_json(monkeypatch, store.url, "dispatch", "status")
    assert before["last_change"] == 3
    assert before["subscribers"]["segment_membership"] == {
        "position": 0,
        "behind": 3,
        "failed": 0,
    }
    drained = invoke_json(monkeypatch, store.url, "dispatch", "drain")
    assert drained == {
        "segment_membership": 3,
        "people_changed": 3,
        "orders_from_events": 0,
        "journeys": 0,
    }
    after = invoke_json(monkeypatch, store.url, "dispatch", "status")
    assert after["subscribers"]["segment_membership"]["behind"] == 0
    table = invoke(monkeypatch, store.url, "dispatch", "status")
    assert table.exit_code == 0 and "segment_membership" in table.output


def test_a_worker_without_nats_says_what_to_set(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(monkeypatch, store.url, "dispatch", "run")
    assert result.exit_code == 2
    assert "SURMESURE_DISPATCH" in result.output and "nats://" in result.output


def test_a_dispatch_that_is_neither_inline_nor_nats_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"dispatch.*nats://127\.0\.0\.1:4222"):
        Settings(dispatch="redis://127.0.0.1:6379")
