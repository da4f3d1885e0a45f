"""The journeys' sends handed over by worker processes (``SURMESURE_SEND_WORKERS`` above 1),
as a campaign's are: each message reaches the SMTP server started here once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from journey_world import (
    T0,
    add_people,
    email_of,
    messages_of,
    publish,
    track,
    welcome_document,
)  # fmt: skip
from smtp_sink import Sink, free_port, start

from surmesure.config import get_settings
from surmesure.deliver.channels import configured
from surmesure.journeys.sends import campaign_key
from surmesure.journeys.worker import run_once
from surmesure.store import Store


def test_a_journey_sends_each_message_once_with_two_workers(store: Store, tmp_path: Path) -> None:
    people = 12
    ids = add_people(store, tmp_path, people)
    publish(store, welcome_document())  # its first step sends at once, then waits two days
    for customer in (f"C{i}" for i in ids):
        track(store, customer, "Signed Up", T0)
    sink, port = Sink(), free_port()
    server = start(port, sink)
    settings = get_settings().model_copy(
        update={
            "send_workers": 2,
            "email_url": f"smtp://127.0.0.1:{port}?sender=news@example.com&pool=1",
            "outbox_dir": tmp_path / "outbox",
        }
    )
    channels = configured(settings)
    try:
        done = run_once(store, T0, channels=channels, settings=settings)
        again = run_once(store, T0, channels=channels, settings=settings)
    finally:
        for channel in channels.values():
            channel.close()
        server.stop()
    received = Counter(m["To"] for m in sink.messages())
    assert received == Counter({email_of(i): 1 for i in range(1, people + 1)})
    assert done.sent == {"sent": people} and again.sent == {}
    # the worker processes handed them over (their lock is taken only there)
    assert (tmp_path / "outbox" / f"{campaign_key('welcome', 'hello')}.workers").exists()
    rows = messages_of(store, campaign_key("welcome", "hello"))
    assert sorted(rows) == sorted(ids.values())
    assert {status for status, _, _ in rows.values()} == {"sent"}
