"""``experiment assign --all`` addresses identified people (a customer id, an e-mail, a phone
or a card); people known only by anonymous web ids join only with ``--anonymous``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from conftest import invoke
from surmesure.experiments import assign, save
from surmesure.store import Store
from surmesure.store.schema import experiment_assignments
from world import add_people, definition

CUSTOMERS = list(range(1, 301))
BY_EMAIL = list(range(301, 351))
DEVICES = list(range(351, 551))


def _assigned(store: Store, name: str) -> set[int]:
    t = experiment_assignments
    with store.connect() as conn:
        return set(conn.execute(sa.select(t.c.person_id).where(t.c.experiment == name)).scalars())


def _world(store: Store) -> None:
    add_people(store, CUSTOMERS)
    add_people(store, BY_EMAIL, kind="email")
    add_people(store, DEVICES, kind="anonymous_id")


def test_all_means_identified_people_unless_anonymous_ones_are_asked(store: Store) -> None:
    _world(store)
    save(store, definition(name="known", holdout=0.0))
    report = assign(store, "known")
    assert report.audience == len(CUSTOMERS) + len(BY_EMAIL)
    assigned = _assigned(store, "known")
    assert assigned and assigned <= set(CUSTOMERS + BY_EMAIL)
    assert assigned & set(BY_EMAIL)
    save(store, definition(name="everyone", holdout=0.0))
    wide = assign(store, "everyone", anonymous=True)
    assert wide.audience == len(CUSTOMERS) + len(BY_EMAIL) + len(DEVICES)
    assert _assigned(store, "everyone") & set(DEVICES)
    # a list of people is taken as given, devices included
    listed = assign(store, "known", people=DEVICES[:10])
    assert listed.audience == 10 and listed.unknown == 0


def test_cli_all_and_anonymous(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _world(store)
    file = tmp_path / "exp.yaml"
    file.write_text(
        "name: scope\nvariants: [{name: a, weight: 0.5}, {name: b, weight: 0.5}]\n"
        "primary: conversion\nattribution_days: 7\nholdout: 0\n"
    )
    assert invoke(monkeypatch, store.url, "experiment", "create", str(file)).exit_code == 0
    known = invoke(monkeypatch, store.url, "experiment", "assign", "scope", "--all", "--json")
    assert orjson.loads(known.stdout)["audience"] == len(CUSTOMERS) + len(BY_EMAIL)
    args = ("experiment", "assign", "scope", "--all", "--anonymous", "--json")
    wide = invoke(monkeypatch, store.url, *args)
    assert orjson.loads(wide.stdout)["audience"] == len(CUSTOMERS + BY_EMAIL + DEVICES)
    alone = invoke(monkeypatch, store.url, "experiment", "assign", "scope", "--anonymous")
    assert alone.exit_code == 2 and "--anonymous" in alone.output
