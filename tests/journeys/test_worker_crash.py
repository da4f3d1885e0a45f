"""A journey worker killed with SIGKILL while it sends, then started again: every step of every
person is sent exactly once, counted by what a real SMTP server received."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from journey_world import T0, add_people, publish, track
from smtp_sink import start
from test_campaign_send import _free_port, _Stalling, _steady, _wait

from surmesure.config import get_settings
from surmesure.store import Store, schema

ROOT = Path(__file__).resolve().parents[2]

TWO_SENDS = {
    "name": "twice",
    "entry": {"event": {"name": "Signed Up"}},
    "steps": [
        {"id": "hello", "send": {"channels": {"email": {"text": "Hello"}}}, "next": "pause"},
        {"id": "pause", "wait": {"hours": 1}, "next": "bye"},
        {"id": "bye", "send": {"channels": {"email": {"text": "Bye"}}}, "next": "done"},
        {"id": "done", "exit": {}},
    ],
}


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "surmesure.cli.main", "journey", "worker", "--once", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_kill_9_of_a_worker_then_a_restart_sends_each_step_once(
    store: Store, tmp_path: Path
) -> None:
    n = 30
    add_people(store, tmp_path, n)
    publish(store, TWO_SENDS)
    for i in range(1, n + 1):
        track(store, f"C{i}", "Signed Up", T0 + timedelta(seconds=i))
    port = _free_port()
    sink = _Stalling(stall_after=12)
    controller = start(port, sink)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SURMESURE_DATABASE_URL": store.url,
        "SURMESURE_EMAIL_URL": f"smtp://127.0.0.1:{port}?pool=2&sender=news@example.com",
        "SURMESURE_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    store.dispose()  # an embedded DuckDB file is one process's at a time
    try:
        first = _worker(env)
        _wait(lambda: sink.stalled)
        _wait(lambda: _steady(sink))
        first.send_signal(signal.SIGKILL)
        first.wait()
        sink.dead, sink.released = True, True
        accepted_before = len(sink.received)
        assert 12 <= accepted_before < 2 * n
        sink.dead = False
        second = _worker(env)
        _, err = second.communicate(timeout=180)
        assert second.returncode == 0, err.decode()
    finally:
        controller.stop()
    received = sink.messages()
    ids = Counter(m["Message-ID"] for m in received)
    assert len(ids) == 2 * n and set(ids.values()) == {1}, ids.most_common(3)
    texts = Counter((m["To"], m.get_body(("plain",)).get_content().strip()) for m in received)
    assert len(texts) == 2 * n and set(texts.values()) == {1}
    assert {t for _, t in texts} == {"Hello", "Bye"}
    m, p = schema.messages, schema.journey_people
    with store.connect() as conn:
        statuses = Counter(
            str(r[0]) for r in conn.execute(sa.select(m.c.status).where(m.c.campaign.like("j_%")))
        )
        ended = Counter(str(r[0]) for r in conn.execute(sa.select(p.c.reason)))
    assert statuses == {"sent": 2 * n}
    assert ended == {"finished": n}
    get_settings.cache_clear()
