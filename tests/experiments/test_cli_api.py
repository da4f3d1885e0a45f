"""The commands and the API on one store: create, assign, results; the same JSON both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import typer
from api_helpers import WRITE_KEY, server_key, serving
from typer.testing import CliRunner

from surmesure.cli import experiment as analyze_cli
from surmesure.cli import experiments_store
from surmesure.config import get_settings
from surmesure.store import Store
from world import add_outcomes, add_people, definition, random_outcomes

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    analyze_cli.register(app)
    experiments_store.register(app)
    return app


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str, code: int = 0) -> Any:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = runner.invoke(_app(), ["experiment", *args])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == code, result.output
    return result


def test_cli_and_api_give_the_same_results(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = list(range(1, 401))
    add_people(store, ids)
    add_outcomes(store, random_outcomes(ids, seed=3))
    file = tmp_path / "welcome.json"
    file.write_bytes(orjson.dumps(definition().document()))
    people = tmp_path / "people.csv"
    people.write_text("person_id,email\n" + "".join(f"{i},x{i}@example.com\n" for i in ids[:50]))

    created = _cli(monkeypatch, store.url, "create", str(file), "--json")
    assert orjson.loads(created.stdout) == {"experiment": "welcome_offer", "outcome": "created"}
    listed = orjson.loads(_cli(monkeypatch, store.url, "list", "--json").stdout)
    assert [(e["name"], e["status"]) for e in listed["experiments"]] == [
        ("welcome_offer", "created")
    ]
    first = orjson.loads(
        _cli(
            monkeypatch, store.url, "assign", "welcome_offer", "--people", str(people), "--json"
        ).stdout
    )
    assert first["audience"] == 50 and first["unknown"] == 0
    rest = orjson.loads(
        _cli(monkeypatch, store.url, "assign", "welcome_offer", "--all", "--json").stdout
    )
    assert rest["already_assigned"] == sum(first["new"].values())
    assert rest["audience"] == 400
    assert (
        sum(rest["new"].values()) + rest["already_assigned"] + rest["holdout"]
        == 400 - rest["outside"]
    )

    cli_json = orjson.loads(
        _cli(monkeypatch, store.url, "results", "welcome_offer", "--json").stdout
    )
    tables = _cli(monkeypatch, store.url, "results", "welcome_offer").stdout
    assert "conversion (primary, binomial" in tables and "unsubscribe (guardrail" in tables
    assert "sample ratio:" in tables

    read = server_key(store, "read")
    with serving(store) as (url, _):
        api = httpx.get(f"{url}/v1/experiments/welcome_offer/results", auth=(read, ""))
        missing = httpx.get(f"{url}/v1/experiments/nope/results", auth=(read, ""))
        anonymous = httpx.get(f"{url}/v1/experiments/welcome_offer/results")
        public = httpx.get(f"{url}/v1/experiments/welcome_offer/results", auth=(WRITE_KEY, ""))
        shown = httpx.get(
            f"{url}/v1/experiments/welcome_offer", headers={"Authorization": f"Bearer {read}"}
        )
    assert api.status_code == 200, api.text
    assert api.json() == cli_json
    assert cli_json["metrics"][0]["variants"][0]["n"] == sum(
        n for v, n in rest["new"].items() if v == "control"
    ) + sum(n for v, n in first["new"].items() if v == "control")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert anonymous.status_code == 401
    assert public.status_code == 403  # the public write key never reads
    assert shown.status_code == 200 and shown.json()["status"] == "running"


def test_cli_refuses_bad_input_with_the_field(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nvariants: [{name: a, weight: 0.9}, {name: b, weight: 0.1}]\n"
        "primary: conversion\nattribution_days: 7\n"
    )
    refused = _cli(monkeypatch, store.url, "create", str(bad), code=2)
    assert "variants[0].weight" in refused.output
    unknown = _cli(monkeypatch, store.url, "results", "nope", code=2)
    assert "No experiment named 'nope'" in unknown.output
    both = _cli(monkeypatch, store.url, "assign", "nope", "--all", "--segment", "vip", code=2)
    assert "exactly one audience" in both.output
