"""A launch from the console plans and records the campaign in the request and returns; the
messages leave from the server's launcher thread, each once, while the SMTP server started here
holds them; a second launch meanwhile plans nothing more; what refuses a launch is said at
once."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from campaign_world import T0, add_people, document, email_of
from smtp_sink import free_port, start
from test_campaign_pause import _statuses
from test_campaign_send import _Stalling, _wait

from surmesure.config import get_settings
from surmesure.deliver import documents, outbox, service
from surmesure.deliver.launcher import Launch, Launcher
from surmesure.errors import Conflict, InvalidInput
from surmesure.store import Store


def _launching(
    store: Store, tmp_path: Path, people: int, *, stall_after: int
) -> tuple[Launcher, _Stalling, Controller]:
    """Campaign ``spring`` to ``people`` people, a started launcher sending it to an SMTP
    server started here that holds the message after ``stall_after`` until released."""
    add_people(store, tmp_path, people)
    documents.save(store, documents.parse(document(policy=None)), T0)
    sink, port = _Stalling(stall_after=stall_after), free_port()
    server = start(port, sink)
    settings = get_settings().model_copy(
        update={
            "email_url": f"smtp://127.0.0.1:{port}?sender=news@example.com&pool=1",
            "outbox_dir": tmp_path / "outbox",
        }
    )
    launcher = Launcher(store, settings)
    launcher.start()
    return launcher, sink, server


def test_a_launch_returns_before_its_messages_leave_and_each_leaves_once(
    store: Store, tmp_path: Path
) -> None:
    people = 12
    launcher, sink, server = _launching(store, tmp_path, people, stall_after=3)
    try:
        launch = launcher.launch("spring", "console:anna@shop.example", T0)
        assert launch.running and launch.campaign == "spring"
        planned = _statuses(store)
        assert sum(planned.values()) == people  # recorded before the launch returned
        _wait(lambda: sink.stalled)  # three have left; the fourth is held by the server
        assert launch.running and not launch.done.is_set()
        again = launcher.launch("spring", "console:anna@shop.example", T0)
        assert again is launch and sum(_statuses(store).values()) == people  # nothing twice
        sink.released = True
        assert launch.done.wait(60)
    finally:
        sink.released = True
        launcher.stop()
        server.stop()
    assert launch.error is None and launch.report is not None
    assert launch.report["sent"] == {"sent": people}
    assert _statuses(store) == {"sent": people}
    received = Counter(m["To"] for m in sink.messages())
    assert received == Counter({email_of(i): 1 for i in range(1, people + 1)})
    assert launcher.last("spring") is launch


def test_a_refused_launch_says_why_at_once_and_starts_nothing(store: Store, tmp_path: Path) -> None:
    add_people(store, tmp_path, 3)
    documents.save(store, documents.parse(document(policy=None)), T0)
    settings = get_settings().model_copy(update={"email_url": None, "sms_url": None})
    launcher = Launcher(store, settings)
    launcher.start()
    try:
        with pytest.raises(Conflict, match="No channel of campaign 'spring'"):
            launcher.launch("spring", "console:anna@shop.example", T0)
        assert launcher.last("spring") is None
        assert _statuses(store) == {"planned": 3}  # recorded, waiting for a channel
        outbox.pause(store, "spring", T0)
        with pytest.raises(Conflict, match="paused"):
            launcher.launch("spring", "console:anna@shop.example", T0)
    finally:
        launcher.stop()
    assert launcher.last("spring") is None


def test_two_launches_at_once_plan_once_and_send_each_message_once(
    store: Store, tmp_path: Path
) -> None:
    """Two marketers press launch together: neither is refused by the other's planning, both
    get the one launch, and each person gets one message."""
    people = 12
    launcher, sink, server = _launching(store, tmp_path, people, stall_after=0)
    together = threading.Barrier(2)
    launches: list[Launch] = []
    errors: list[BaseException] = []

    def press() -> None:
        together.wait()
        try:
            launches.append(launcher.launch("spring", "console:anna@shop.example", T0))
        except BaseException as exc:  # what a marketer would see as a failed page
            errors.append(exc)

    try:
        pressing = [threading.Thread(target=press) for _ in range(2)]
        for thread in pressing:
            thread.start()
        for thread in pressing:
            thread.join(60)
        assert errors == [] and len(launches) == 2 and launches[0] is launches[1]
        sink.released = True
        assert launches[0].done.wait(60)
    finally:
        sink.released = True
        launcher.stop()
        server.stop()
    assert _statuses(store) == {"sent": people}
    received = Counter(m["To"] for m in sink.messages())
    assert received == Counter({email_of(i): 1 for i in range(1, people + 1)})


def test_a_send_failing_in_its_channel_shows_no_detail_on_the_page(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error from inside a channel (a template engine's text may quote a person's message)
    is logged; the campaign page's launch says only its kind, and what did not leave stays
    planned."""
    add_people(store, tmp_path, 2)
    documents.save(store, documents.parse(document(policy=None)), T0)

    def failing(*_: object, **__: object) -> None:
        raise InvalidInput("line 3: <mj-text> Bonjour Name1, your order W-1 ...")

    monkeypatch.setattr(service, "deliver", failing)
    settings = get_settings().model_copy(
        update={"email_url": "smtp://127.0.0.1:9?sender=news@example.com"}
    )
    launcher = Launcher(store, settings)
    launcher.start()
    try:
        launch = launcher.launch("spring", "console:anna@shop.example", T0)
        assert launch.done.wait(30)
    finally:
        launcher.stop()
    assert launch.error == "InvalidInput; what did not leave stays planned"
    assert _statuses(store) == {"planned": 2}
