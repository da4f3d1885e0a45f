"""A process killed between its commit and the dispatch loses nothing: the outbox holds the
changes, and the next dispatcher delivers them, with their effect exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from dispatch_helpers import save_viewers, track, value

from surmesure.dispatch import dispatcher
from surmesure.store import Store

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 30

# ``surmesure import``'s path for events, stopped dead where it would hand the changes on
CRASHING_IMPORT = """
import os, sys, time
from pathlib import Path
from surmesure.dispatch import dispatcher
from surmesure.store import open_store
from surmesure.collect.events import ingest_file

def die_here(store, settings=None):
    print("committed", flush=True)
    time.sleep(60)

dispatcher.settle = die_here
ingest_file(open_store(os.environ["SURMESURE_DATABASE_URL"]), Path(sys.argv[1]))
"""


def test_changes_committed_before_a_kill_are_delivered_after_it(
    store: Store, tmp_path: Path
) -> None:
    save_viewers(store)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(track(f"v-{i}", f"k-{i}")) for i in range(PEOPLE)))
    store.dispose()  # one process at a time may open a DuckDB file
    env = {**os.environ, "SURMESURE_DATABASE_URL": store.url, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_IMPORT, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "committed\n", child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert value(store, "SELECT count(*) FROM events") == PEOPLE
    assert value(store, "SELECT count(*) FROM segment_members") == 0  # nothing handed on yet
    assert value(store, "SELECT count(*) FROM changes") == PEOPLE

    assert dispatcher.drain(store)["segment_membership"] == PEOPLE
    assert dispatcher.drain(store)["segment_membership"] == 0
    assert value(store, "SELECT count(*) FROM segment_members") == PEOPLE
    entered = "SELECT count(DISTINCT person_id) FROM segment_changes WHERE change = 'entered'"
    assert value(store, entered) == value(store, "SELECT count(*) FROM segment_changes") == PEOPLE
