"""The key and audit commands, and `serve` refusing the development secret and key."""

from __future__ import annotations

import pytest

from conftest import invoke, invoke_json
from surmesure.config import get_settings
from surmesure.protect.keys import hash_key
from surmesure.store import Store
from surmesure.web.identity import key_identity_secret


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
    assert wrong.exit_code == 2 and "collect, decide, read, calls, web, admin" in wrong.output
    revoked = invoke_json(monkeypatch, store.url, "key", "revoke", "shop-backend")
    assert revoked["revoked_at"] is not None
    actions = invoke_json(monkeypatch, store.url, "audit", "list")["entries"]
    assert [e["action"] for e in actions] == ["key.revoke", "key.create"]
    assert all(e["actor"].startswith("cli:") for e in actions)


def test_a_web_key_is_made_with_its_origins_and_identity_secret(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = invoke_json(
        monkeypatch, store.url, "key", "create", "shop", "--scope", "web",
        "--origin", "https://Shop.example", "--origin", "https://www.shop.example/",
    )  # fmt: skip
    assert made["origins"] == ["https://shop.example", "https://www.shop.example"]
    assert made["source"] == "web" and len(made["identity_secret"]) == 64
    assert made["identity_secret"] == key_identity_secret(get_settings().secret_key, made["key_id"])
    listed = invoke_json(monkeypatch, store.url, "key", "list")["keys"]
    assert listed[0]["origins"] == made["origins"]
    shown = invoke_json(monkeypatch, store.url, "key", "identity", "shop")
    assert shown["identity_secret"] == made["identity_secret"]
    not_web = invoke_json(monkeypatch, store.url, "key", "create", "b", "--scope", "decide")
    assert "identity_secret" not in not_web
    refused = invoke(monkeypatch, store.url, "key", "identity", "b")
    assert refused.exit_code == 2 and "no web scope" in refused.output
    assert made["identity_secret"] not in str(listed)
    public = invoke(monkeypatch, store.url, "key", "create", "x", "--scope", "web",
                    "--scope", "read")  # fmt: skip
    assert public.exit_code == 2 and "public pages" in public.output
    stray = invoke(monkeypatch, store.url, "key", "create", "y", "--scope", "decide",
                   "--origin", "https://shop.example")  # fmt: skip
    assert stray.exit_code == 2 and "--scope web" in stray.output
    # a new key of the same name takes the name and its own origins
    again = invoke_json(
        monkeypatch, store.url, "key", "create", "shop", "--scope", "web", "--replace",
        "--origin", "https://new.example",
    )  # fmt: skip
    names = {
        k["name"]: k["origins"] for k in invoke_json(monkeypatch, store.url, "key", "list")["keys"]
    }
    assert names["shop"] == ["https://new.example"] and again["key_id"] != made["key_id"]


def test_serve_refuses_development_values_without_dev(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SURMESURE_SECRET_KEY", raising=False)
    monkeypatch.delenv("SURMESURE_WRITE_KEYS", raising=False)
    refused = invoke(monkeypatch, store.url, "serve", "--port", "1")
    assert refused.exit_code == 2
    assert "SURMESURE_SECRET_KEY" in refused.output and "--dev" in refused.output
