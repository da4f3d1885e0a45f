"""The schedule's format, due times, and the server running due jobs: each run recorded, a
failing job recorded with its error while the server keeps answering, ``status`` showing both,
and the commands that run the same jobs by hand recorded too."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from api_helpers import serving
from pydantic import ValidationError

from conftest import invoke, invoke_json
from surmesure.clock import utcnow
from surmesure.config import Settings
from surmesure.ops.runs import last_runs, run_job
from surmesure.ops.schedule import Daily, Every, next_due, parse_rule, parse_schedule
from surmesure.store import Store
from surmesure.store.schema import job_runs, segment_versions, segments

T0 = datetime(2026, 3, 1, 12, 30)


def test_rules_read_and_next_due() -> None:
    assert parse_rule("every 15m") == Every(timedelta(minutes=15))
    assert parse_rule(" Every 2H ") == Every(timedelta(hours=2))
    assert parse_rule("every 1d") == Every(timedelta(days=1))
    assert parse_rule("daily 03:00") == Daily(datetime(2000, 1, 1, 3).time())
    assert parse_rule("off") is None
    every = Every(timedelta(seconds=30))
    assert next_due(every, None, T0) == T0 + timedelta(seconds=30)
    assert next_due(every, T0 - timedelta(hours=1), T0) == T0 - timedelta(minutes=59, seconds=30)
    daily = Daily(datetime(2000, 1, 1, 3).time())
    assert next_due(daily, None, T0) == datetime(2026, 3, 2, 3)
    assert next_due(daily, datetime(2026, 3, 1, 2, 59), T0) == datetime(2026, 3, 1, 3)
    assert next_due(daily, datetime(2026, 3, 1, 3), T0) == datetime(2026, 3, 2, 3)
    assert list(parse_schedule({"retention": "off", "derive": "daily 01:00"})) == ["derive"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"derive": "hourly"}, "schedule['derive']: 'hourly'"),
        ({"derive": "every 0s"}, "schedule['derive']"),
        ({"retention": "daily 24:00"}, "schedule['retention']"),
        ({"segments": "every 1m"}, "schedule names the job 'segments'"),
        ("not json", "schedule is 'not json'"),
    ],
)
def test_bad_schedule_refused_naming_the_setting(value: Any, named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(schedule=value)
    error = caught.value.errors()[0]
    assert error["loc"] == ("schedule",)
    assert named in error["msg"]
    assert (
        "every 15m" in error["msg"]
        or "the jobs are derive" in error["msg"]
        or ("JSON object" in error["msg"])
    )


def test_schedule_off_and_default() -> None:
    assert Settings(schedule="off").schedule == {}
    assert set(Settings().schedule) == {"derive", "segment_refresh", "retention", "cascades"}


def _runs(store: Store, job: str) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(job_runs).where(job_runs.c.job == job).order_by(job_runs.c.started_at)
        )
        return [dict(r._mapping) for r in rows]


def _wait_for(store: Store, job: str, count: int, seconds: float = 20.0) -> list[dict[str, Any]]:
    """The runs of ``job`` once ``count`` of them have finished."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = _runs(store, job)
        if sum(r["finished_at"] is not None for r in runs) >= count:
            return runs
        time.sleep(0.05)
    raise AssertionError(f"{job} did not finish {count} runs in {seconds} s: {_runs(store, job)}")


def test_due_job_runs_once_with_two_servers_and_not_again_after_a_restart(store: Store) -> None:
    an_hour_ago = utcnow() - timedelta(hours=1, seconds=1)
    with store.begin() as conn:
        conn.execute(
            job_runs.insert().values(
                run_id="earlier", job="segment_refresh", started_at=an_hour_ago,
                finished_at=an_hour_ago, ok=True, summary="by hand", actor="cli:someone",
            )
        )  # fmt: skip
    schedule = {"segment_refresh": "every 1h", "derive": "daily 03:00"}
    with serving(store, schedule=schedule) as (url, _), serving(store, schedule=schedule):
        _wait_for(store, "segment_refresh", 2)
        time.sleep(0.3)  # a second run would start at once if the first were not recorded
        assert httpx.get(f"{url}/health").status_code == 200
    runs = _runs(store, "segment_refresh")
    assert len(runs) == 2
    ran = runs[1]
    assert ran["actor"] == "scheduler" and ran["ok"] is True
    assert ran["summary"] == "0 segments refreshed, 0 entered, 0 exited"
    assert ran["started_at"] >= an_hour_ago + timedelta(hours=1)
    assert _runs(store, "derive") == []  # not due before 03:00 after the start
    with serving(store, schedule=schedule):
        time.sleep(0.5)  # the scheduler reads the last runs as it starts
    assert len(_runs(store, "segment_refresh")) == 2


def test_a_scheduled_run_is_claimed_by_one_server_only(store: Store) -> None:
    due = utcnow()
    settings = Settings(database_url=store.url, schedule={"segment_refresh": "every 1m"})
    first = run_job(store, settings, "segment_refresh", due)
    again = run_job(store, settings, "segment_refresh", due)
    later = run_job(store, settings, "segment_refresh", due + timedelta(minutes=1))
    assert first is not None and later is not None
    assert again is None
    assert len(_runs(store, "segment_refresh")) == 2


def test_failing_job_recorded_server_still_answers_status_shows_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    broken = {"name": "broken", "where": {"kind": "jane.doe@example.com"}}
    with store.begin() as conn:
        conn.execute(segments.insert().values(name="broken", version=1, created_at=now,
                                              updated_at=now))  # fmt: skip
        conn.execute(
            segment_versions.insert().values(
                name="broken", version=1, definition=broken, created_at=now
            )
        )
    with serving(store, schedule={"segment_refresh": "every 1s"}) as (url, _):
        runs = _wait_for(store, "segment_refresh", 1)
        assert httpx.get(f"{url}/health").status_code == 200
        answer = httpx.post(f"{url}/v1/track", json={})
        assert answer.status_code in (400, 401)  # an answer, not a dead server
    failed = runs[0]
    assert failed["ok"] is False and failed["finished_at"] is not None
    summary = failed["summary"]
    assert "\n" not in summary and "jane.doe" not in summary and "example.com" not in summary
    assert summary.startswith("pydantic_core._pydantic_core.ValidationError at ")

    monkeypatch.setenv("SURMESURE_SCHEDULE", orjson.dumps({"segment_refresh": "every 1s"}).decode())
    jobs = {j["job"]: j for j in invoke_json(monkeypatch, store.url, "status")["jobs"]}
    shown = jobs["segment_refresh"]
    last = last_runs(store)["segment_refresh"]
    assert shown["schedule"] == "every 1s"
    assert shown["last_run"]["ok"] is False and shown["last_run"]["summary"] == last["summary"]
    assert datetime.fromisoformat(shown["next_due"]) == last["started_at"] + timedelta(seconds=1)
    assert jobs["derive"]["last_run"] is None and jobs["derive"]["next_due"] is None
    assert jobs["derive"]["schedule"] == "off"
    table = invoke(monkeypatch, store.url, "status")
    assert table.exit_code == 0, table.output
    assert "segment_refresh" in table.output and "failed" in table.output


def test_commands_record_their_runs(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURMESURE_SCHEDULE", "off")
    invoke_json(monkeypatch, store.url, "retention", "run")
    invoke_json(monkeypatch, store.url, "retention", "run", "--dry-run")
    invoke_json(monkeypatch, store.url, "segment", "refresh")
    invoke_json(monkeypatch, store.url, "derive")
    runs = last_runs(store)
    assert set(runs) == {"retention", "segment_refresh", "derive"}
    assert runs["derive"]["ok"] is True
    assert runs["derive"]["summary"].startswith("0 people as of ")
    assert len(_runs(store, "retention")) == 1  # a dry run deletes nothing and is not a run
    assert runs["retention"]["ok"] is True
    assert runs["retention"]["summary"] == "0 rows removed, 0 video files"
    assert runs["retention"]["actor"].startswith("cli:")
    jobs = {j["job"]: j for j in invoke_json(monkeypatch, store.url, "status")["jobs"]}
    assert jobs["retention"]["last_run"]["summary"] == "0 rows removed, 0 video files"
    assert jobs["retention"]["next_due"] is None  # off
