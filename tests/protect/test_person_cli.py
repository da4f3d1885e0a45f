"""``surmesure person show|export|erase|unmerge`` through the CLI, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from person_world import ANA, BO, count_where, import_world, person_of, write_world
from typer.testing import CliRunner

from surmesure.cli.main import app
from surmesure.config import get_settings
from surmesure.protect import blind
from surmesure.store import Store

runner = CliRunner()


def _run(monkeypatch: pytest.MonkeyPatch, store: Store, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["person", *args])
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.stdout, result.stderr


def _json(monkeypatch: pytest.MonkeyPatch, store: Store, *args: str) -> dict[str, Any]:
    code, out, err = _run(monkeypatch, store, *args, "--json")
    assert code == 0, out + err
    payload: dict[str, Any] = orjson.loads(out)
    return payload


def test_person_commands(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_world(store, write_world(tmp_path))
    ana = person_of(store, "email", ANA["email"])

    shown = _json(monkeypatch, store, "show", "email:Ana.Martin@Example.org")
    assert shown["person_id"] == ana
    assert shown["counts"] == {
        "orders": 2,
        "returns": 1,
        "events": 0,
        "survey_answers": 1,
        "channel_activity": 1,
    }
    first_name = next(t for t in shown["traits"] if t["name"] == "first_name")
    assert (first_name["value"], first_name["source"]) == ("Ana", "crm")
    assert [(c["value"], c["source"]) for c in first_name["competing"]] == [("Anna", "shop")]
    assert first_name["effective_reliability"] < first_name["reliability"] == 0.9
    assert [(c["purpose"], c["channel"], c["granted"]) for c in shown["consents"]] == [
        ("marketing", "email", False)
    ]
    (merge,) = shown["merges"]
    assert merge["evidence"]["via"] == {
        "kind": "email",
        "index": blind.index(store, "email", ANA["email"]),
        "value": ANA["email"],
    }

    code, table, _ = _run(monkeypatch, store, "show", str(ana))
    assert code == 0 and "merge history" in table and "CARD-ANA-5512" in table

    out = tmp_path / "export" / "ana.json"
    summary = _json(monkeypatch, store, "export", str(merge["absorbed_id"]), "--out", str(out))
    assert summary["person_id"] == ana and summary["rows"]["identifiers"] == 4
    assert orjson.loads(out.read_bytes())["tables"]["merges"][0]["merge_id"] == merge["merge_id"]
    code, stdout, _ = _run(monkeypatch, store, "export", f"email:{BO['email']}")
    assert code == 0 and orjson.loads(stdout)["tables"]["identifiers"][0]["value"] in BO.values()

    code, _, err = _run(monkeypatch, store, "erase", f"customer_id:{ANA['customer_id']}")
    assert code == 2 and "--yes" in err
    assert count_where(store, "people", "person_id = :p", p=ana) == 1

    undone = _json(monkeypatch, store, "unmerge", str(ana), "--merge", str(merge["merge_id"]))
    assert undone["absorbed_id"] == merge["absorbed_id"] and undone["undone_at"]
    code, _, err = _run(monkeypatch, store, "unmerge", str(ana), "--merge", str(merge["merge_id"]))
    assert code == 2 and "already undone" in err

    erased = _json(
        monkeypatch,
        store,
        "erase",
        f"customer_id:{ANA['customer_id']}",
        "--yes",
        "--reason",
        "asked at the shop",
    )
    assert erased["person_id"] == merge["absorbed_id"]
    assert erased["deleted"]["identifiers"] == 2
    assert erased["suppressed"] == 2
    assert count_where(store, "suppressions", "reason = 'asked at the shop'") == 2
    held = "kind = :k AND value = :v"
    customer = blind.index(store, "customer_id", ANA["customer_id"])
    assert count_where(store, "identifiers", held, k="customer_id", v=customer) == 0
    assert (
        count_where(
            store, "identifiers", held, k="email", v=blind.index(store, "email", ANA["email"])
        )
        == 1
    )

    code, table, _ = _run(monkeypatch, store, "erase", f"email:{BO['email']}", "--yes")
    assert code == 0 and "erased" in table and "detached" in table
    assert "3 identifier(s) suppressed" in table

    code, _, err = _run(monkeypatch, store, "show", "customer_id:CUST-ANA-7781")
    assert code == 2 and "Nobody is known" in err and "fix:" in err
