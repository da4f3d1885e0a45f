"""A video campaign from end to end: the films are rendered before sending, a real SMTP
server receives each person's e-mail with their film's poster linking to their video page,
Debian's Chromium opens the page and plays the film (muted) with its subtitles, the events it
reports land, and the campaign's results count them as the browser sent them; a button's
click is recorded and leads to the shop."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from api_helpers import free_port, serving
from campaign_world import add_people
from smtp_sink import Sink, start
from video_campaign_world import SHOP, save, video_campaign, write_template

from surmesure.clock import utcnow
from surmesure.deliver import results, service
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.store import Store, schema

FILM = "document.getElementById('film')"
SUBTITLED = (
    f"(() => {{ const t = {FILM}.textTracks[0];"
    " return !!(t && t.mode === 'showing' && t.cues && t.cues.length > 0); })()"
)
PLAY = f"(() => {{ const v = {FILM}; v.muted = true; v.play(); return true; }})()"
POSTER = re.compile(r'<a href="([^"]+/v/[^"/]+)"><img src="([^"]+/poster\.jpg)"')


def _until(check: Callable[[], bool], seconds: float = 15.0, page: Any = None) -> None:
    """Until ``check()``; waiting on ``page`` when given, so that the browser's requests
    reach the test's handlers (Playwright calls them only while it is called)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "waited in vain"
        if page is None:
            time.sleep(0.1)
        else:
            page.wait_for_timeout(100)


def _activity(store: Store) -> list[tuple[int, str]]:
    a = schema.channel_activity
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.person_id, a.c.kind).where(
                a.c.channel == "video", a.c.campaign == "spring"
            )
        )
        return sorted((int(r[0]), str(r[1])) for r in rows)


def test_films_are_sent_played_and_measured(
    duckdb_store: Store, tmp_path: Path, chromium: Any
) -> None:
    store = duckdb_store
    ids = add_people(store, tmp_path, 3)
    save(store, video_campaign("spring", write_template(tmp_path)), utcnow(), tmp_path)
    sink, port = Sink(), free_port()
    controller = start(port, sink)
    with serving(store, video_dir=tmp_path / "videos") as (base, app):
        settings = app.state.settings.model_copy(update={"public_url": base})
        app.state.settings = settings  # the links the e-mails and the page carry lead here
        channel = EmailChannel(
            EmailSettings(port=port, sender="news@example.com", pool=1),
            UnsubscribeLinks(base, settings.secret_key),
        )
        progress: list[tuple[int, int]] = []
        try:
            report = service.send(
                store,
                "spring",
                utcnow(),
                channels={"email": channel},
                folder=tmp_path,
                settings=settings,
                on_render=lambda done, total: progress.append((done, total)),
            )
        finally:
            channel.close()
            controller.stop()
        assert report.films == 3 and progress[-1] == (3, 3)
        assert report.sent is not None and report.sent.counts == {"sent": 3}

        # each e-mail shows its person's poster as a picture linking to their page
        pages: dict[int, str] = {}
        for message in sink.messages():
            html = message.get_body(("html",)).get_content()
            found = POSTER.search(html)
            assert found is not None, html
            page, poster = found.groups()
            assert poster == f"{page}/poster.jpg" and page.startswith(f"{base}/v/")
            picture = httpx.get(poster)
            assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
            who = int(str(message["To"]).removeprefix("person").split("@")[0])
            pages[ids[who]] = page
        assert len(set(pages.values())) == 3
        # the e-mails that left delivered the video messages, recorded then
        m = schema.messages
        with store.connect() as conn:
            rows = conn.execute(
                sa.select(m.c.person_id, m.c.status, m.c.reason).where(m.c.channel == "video")
            ).all()
        assert sorted(tuple(r) for r in rows) == [
            (p, "sent", "link:email") for p in sorted(ids.values())
        ]
        vtt = httpx.get(f"{pages[ids[1]]}/subtitles.vtt").text
        assert "Bonjour Name1" in vtt  # the film is the person's own

        reported: dict[int, list[str]] = {}
        context = chromium.new_context()
        context.route(
            f"{SHOP}*", lambda route: route.fulfill(body="the shop", content_type="text/plain")
        )
        try:
            for person, watch in ((ids[1], "to the end"), (ids[2], "a moment")):
                page = context.new_page()
                sent: list[str] = []
                reported[person] = sent

                def seen(request: Any, sent: list[str] = sent) -> None:
                    if request.method == "POST" and request.url.endswith("/events"):
                        sent.append(json.loads(request.post_data)["event"])

                page.on("request", seen)
                page.goto(pages[person])
                # the page's policy allows no eval: Playwright's waiting predicates are not run
                _until(lambda page=page: page.evaluate(SUBTITLED))
                cue = page.evaluate(f"{FILM}.textTracks[0].cues[0].text")
                assert cue.startswith("Bonjour Name")
                page.evaluate(PLAY)
                if watch == "to the end":
                    _until(lambda page=page: page.evaluate(f"{FILM}.ended"), 20)
                    _until(lambda sent=sent: "complete" in sent, page=page)
                else:
                    _until(lambda page=page: page.evaluate(f"{FILM}.currentTime > 0"))
                    page.evaluate(f"{FILM}.pause()")
                    _until(lambda sent=sent: "play" in sent, page=page)
                    page.click("a.cta")
                    page.wait_for_url(f"{SHOP}*")
                    assert "the shop" in page.content()
                page.close()
        finally:
            context.close()

        kinds = {"play": "played", "25": "quarter_25", "50": "quarter_50",
                 "75": "quarter_75", "complete": "completed"}  # fmt: skip
        # every event the browser sent landed, once
        expected = sorted(
            [(p, kinds[e]) for p, sent in reported.items() for e in set(sent)]
            + [(p, "opened") for p in reported]
            + [(ids[2], "clicked")]
        )
        _until(lambda: _activity(store) == expected)

    out = results.measure(store, "spring")
    film = out["video"]
    views = [p for p, sent in reported.items() if "play" in sent]
    done = [p for p in views if "complete" in reported[p]]
    assert film["views"] == len(views) == 2
    assert film["completed"] == len(done) == 1
    assert film["completion_rate"] == len(done) / len(views)
    assert film["quarters"] == {q: sum(q in reported[p] for p in views) for q in ("25", "50", "75")}
    assert film["pages_opened"] == 2 and film["clicked"] == 1
    email = next(g for g in out["groups"] if g["arm"] == "message" and g["channel"] == "email")
    assert email["opened"] == 2 and email["clicked"] == 1 and email["delivered"] == 3
