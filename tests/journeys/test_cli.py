"""``surmesure journey``: validate, publish, pause, resume, status, person, simulate; and the
references a document names are checked against what exists."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from journey_world import T0, add_people, people_rows, track, welcome_document

from conftest import invoke, invoke_json
from surmesure.errors import InvalidInput
from surmesure.journeys import published
from surmesure.journeys.document import parse
from surmesure.journeys.worker import run_once
from surmesure.store import Store


def _file(folder: Path, document: dict[str, Any], name: str = "journey.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_references_are_checked_with_their_place(store: Store) -> None:
    welcome = welcome_document()
    cases: list[tuple[str, dict[str, Any], str]] = []
    segment = copy.deepcopy(welcome)
    segment["entry"] = {"segment": {"name": "nobody_saved_this"}}
    cases.append(("entry.segment.name", segment, "unknown segment"))
    branch = copy.deepcopy(welcome)
    branch["steps"][4]["branch"]["if"] = {"segment": "missing_one"}
    cases.append(("steps[4].branch.if.segment", branch, "unknown segment"))
    template = copy.deepcopy(welcome)
    template["steps"][0]["send"]["channels"]["email"] = {"template": "no_such_template"}
    cases.append(("steps[0].send.channels.email.template", template, "unknown template"))
    event = copy.deepcopy(welcome)
    event["steps"][3]["wait_for_event"]["event"] = "Prodcut Viewed"
    cases.append(("steps[3].wait_for_event.event", event, "unknown event"))
    for field, document, message in cases:
        with pytest.raises(InvalidInput) as caught:
            published.publish(store, parse(document), T0)
        assert caught.value.field == field
        assert message in caught.value.message
        assert caught.value.hint
    with store.connect() as conn:
        assert published.catalog(conn) == {}  # nothing was published


def test_publish_status_person_and_pause(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    welcome = welcome_document()
    ids = add_people(store, tmp_path, 3)
    path = _file(tmp_path, welcome)
    assert invoke_json(monkeypatch, store.url, "journey", "validate", str(path))["valid"]
    out = invoke_json(monkeypatch, store.url, "journey", "publish", str(path))
    assert out == {"name": "welcome", "version": 1, "changed": True}
    for i in (1, 2, 3):
        track(store, f"C{i}", "Signed Up", T0)
    track(store, "C3", "Order Completed", T0 + timedelta(hours=2))

    status = invoke_json(monkeypatch, store.url, "journey", "status", "welcome")
    assert status["entered"] == 3 and status["running"] == 2 and status["goals"] == 1
    steps = {s["step"]: s for s in status["steps"]}
    assert steps["hello"]["through"] == 3 and steps["pause"]["now"] == 2
    assert status["ended"] == {"goal": 1}
    assert status["conversion"] == pytest.approx(1 / 3)

    person = invoke_json(monkeypatch, store.url, "journey", "person", "welcome", str(ids[3]))
    assert [e["reason"] for e in person["entries"]] == ["goal"]
    assert [h["what"] for h in person["history"]] == ["entered", "next", "ended: goal"]

    paused = invoke_json(monkeypatch, store.url, "journey", "pause", str(path))
    assert paused == {"name": "welcome", "before": "active", "status": "paused"}
    track(store, "C1", "Order Completed", T0 + timedelta(hours=3))  # paused: still a goal
    again = invoke_json(monkeypatch, store.url, "journey", "status", "welcome")
    assert again["goals"] == 2 and again["status"] == "paused"
    run_once(store, T0 + timedelta(days=3))  # paused: person 2's timer waits
    assert people_rows(store, "welcome")[ids[2]]["step"] == "pause"
    invoke_json(monkeypatch, store.url, "journey", "resume", "welcome")
    run_once(store, T0 + timedelta(days=3))
    assert people_rows(store, "welcome")[ids[2]]["step"] == "watch"

    table = invoke(monkeypatch, store.url, "journey", "status", "welcome")
    assert table.exit_code == 0 and "hello" in table.output
    bad = invoke(monkeypatch, store.url, "journey", "status", "nothing_here")
    assert bad.exit_code != 0 and "journey publish" in bad.output


def test_a_refused_file_names_the_step_and_the_fix(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    welcome = welcome_document()
    del welcome["steps"][3]["timeout"]
    result = invoke(monkeypatch, store.url, "journey", "validate", str(_file(tmp_path, welcome)))
    assert result.exit_code != 0
    assert "steps[3].timeout" in result.output and "timeout: STEP" in result.output


def test_simulate_replays_history_and_prints_the_funnel(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    welcome = welcome_document()
    add_people(store, tmp_path, 4)
    for i in (1, 2, 3, 4):
        track(store, f"C{i}", "Signed Up", T0 + timedelta(hours=i))
    track(store, "C2", "Order Completed", T0 + timedelta(days=1))
    track(store, "C3", "Product Viewed", T0 + timedelta(days=3))
    track(store, "C4", "Page Viewed", T0 + timedelta(days=9))  # the last event: the window's end
    path = _file(tmp_path, welcome)
    png = tmp_path / "funnel.png"
    out = invoke_json(
        monkeypatch, store.url, "journey", "simulate", str(path), "--days", "10", "--plot", str(png)
    )
    assert out["entered"] == 4
    steps = {s["step"]: s for s in out["steps"]}
    assert steps["hello"]["sends"] == 4
    assert steps["reminder"]["sends"] == 3  # person 2 bought before
    assert steps["lyon"]["through"] == 1  # person 3 viewed a product during the watch
    # people 1 and 4 timed out of the watch (72 h after the reminder, within the window)
    assert out["ended"] == {"finished": 3, "goal": 1}
    assert png.stat().st_size > 1000
    assert orjson.loads(orjson.dumps(out))["transitions"] == out["transitions"] > 0
