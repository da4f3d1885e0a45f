"""The key and audit commands, and `serve` refusing the development secret and key."""

from __future__ import annotations

import pytest

from conftest import invoke, invoke_json
from surmesure.protect.keys import hash_key
from surmesure.store import Store


def test_key_create_list_revoke_and_audit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    made = invoke_json(
        monkeypatch, store.url, "key", "create", "shop-backend", "--scope", "decide",
        "--scope", "read",
    )  # fmt: skip
    assert made["key"].startswith("sm_") and made["scopes"] == ["decide", "read"]
    listed = invoke_json(monkeypatch, store.url, "key", "list")["keys"]
    assert [k["name"] for k in listed] == ["shop-backend"]
    assert made["key"] not in str(listed) and hash_key(made["key"]) not in str(listed)
    twice = invoke(monkeypatch, store.url, "key", "create", "shop-backend", "--scope", "read")
    assert twice.exit_code == 2 and "exists" in twice.output
    wrong = invoke(monkeypatch, store.url, "key", "create", "x", "--scope", "everything")
    assert wrong.exit_code == 2 and "collect, decide, read, calls, admin" in wrong.output
    revoked = invoke_json(monkeypatch, store.url, "key", "revoke", "shop-backend")
    assert revoked["revoked_at"] is not None
    actions = invoke_json(monkeypatch, store.url, "audit", "list")["entries"]
    assert [e["action"] for e in actions] == ["key.revoke", "key.create"]
    assert all(e["actor"].startswith("cli:") for e in actions)


def test_serve_refuses_development_values_without_dev(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SURMESURE_SECRET_KEY", raising=False)
    monkeypatch.delenv("SURMESURE_WRITE_KEYS", raising=False)
    refused = invoke(monkeypatch, store.url, "serve", "--port", "1")
    assert refused.exit_code == 2
    assert "SURMESURE_SECRET_KEY" in refused.output and "--dev" in refused.output
