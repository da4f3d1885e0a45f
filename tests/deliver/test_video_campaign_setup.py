"""A video campaign's document, its films rendered ahead from the command line, its figures
on both stores, and erasure reaching a person's own film files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from campaign_world import add_people, refuse
from video_campaign_world import fake_film, record_films, save, video_campaign, write_template

from conftest import invoke, invoke_json
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.deliver import documents, plan, results, service, video, video_pages
from surmesure.deliver.channel import Message
from surmesure.deliver.video import VideoChannel
from surmesure.errors import InvalidInput
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema


def _refusal(store: Store, doc: dict[str, object], base: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        save(store, doc, utcnow(), base)
    return caught.value


def test_a_document_names_its_video_template_and_buttons(
    duckdb_store: Store, tmp_path: Path
) -> None:
    store = duckdb_store
    template = write_template(tmp_path)
    good = video_campaign("spring", template)
    # a message printing the film's link needs a video template
    no_video = {k: v for k, v in good.items() if k != "video"}
    error = _refusal(store, no_video, tmp_path)
    assert error.field == "video" and "video: {template: FILE}" in str(error.hint)
    channel_only = {**no_video, "channels": {"video": {"text": "Votre film"}}, "policy": None}
    assert _refusal(store, channel_only, tmp_path).field == "video"
    # so does a template of the library printing it
    library = tmp_path / "library"
    library.mkdir()
    (library / "film_mail.yaml").write_text(
        "name: film_mail\nplacement: film_mail\nchannel: email\nformat: text\n"
        "variants:\n  - {name: default, subject: Film, body: 'Votre film : {{ video_link }}'}\n",
        encoding="utf-8",
    )
    store.follow(get_settings().model_copy(update={"templates_dir": library}))
    by_name = {**no_video, "channels": {"email": {"template": "film_mail"}}}
    assert _refusal(store, by_name, tmp_path).field == "video"
    save(store, {**by_name, "name": "summer", "video": good["video"]}, utcnow(), tmp_path)
    # the template must exist and be a video template, the buttons lead to web pages
    missing = {**good, "video": {"template": "nowhere.yaml"}}
    error = _refusal(store, missing, tmp_path)
    assert error.field == "video.template" and "nowhere.yaml" in error.message
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nscenes: []\n", encoding="utf-8")
    error = _refusal(store, {**good, "video": {"template": "broken.yaml"}}, tmp_path)
    assert error.field == "video.template" and "scenes" in error.message
    hostile = {"template": "short_hello.yaml", "buttons": [{"label": "x", "url": "javascript:1"}]}
    error = _refusal(store, {**good, "video": hostile}, tmp_path)
    assert error.field == "video.buttons[0].url"
    # saved with its template's path made absolute: the server reads it from anywhere
    relative = {**good, "video": {**good["video"], "template": "short_hello.yaml"}}  # type: ignore[dict-item]
    save(store, relative, utcnow(), tmp_path)
    with store.connect() as conn:
        definition, _ = documents.get(conn, "spring")
    assert definition.video is not None and definition.video.template == str(template.resolve())


def test_films_are_rendered_ahead_from_the_command_line(
    duckdb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = duckdb_store
    ids = add_people(store, tmp_path, 2)
    now = utcnow()
    save(store, video_campaign("spring", write_template(tmp_path)), now, tmp_path)
    with store.connect() as conn:
        definition, version = documents.get(conn, "spring")
        planned = plan.plan(store, conn, definition, version, now)
    with store.begin() as conn:
        plan.record(store, conn, planned, now)
    shown = service.preview(store, "spring", "customer_id:C1", now)["content"]
    assert re.search(
        r'<a href="[^"]+/v/[^"/]+"><img src="[^"]+/v/[^"/]+/poster.jpg"', shown["html"]
    )
    monkeypatch.setenv("SURMESURE_VIDEO_DIR", str(tmp_path / "videos"))
    monkeypatch.setattr(video, "BATCH", 1)  # one film rendered and recorded at a time
    made = invoke_json(monkeypatch, store.url, "campaign", "render-videos", "spring")
    assert made == {"campaign": "spring", "films_rendered": 2}
    again = invoke_json(monkeypatch, store.url, "campaign", "render-videos", "spring")
    assert again["films_rendered"] == 0  # each person's film is made once
    f = schema.video_films
    with store.connect() as conn:
        rows = conn.execute(sa.select(f.c.node_id, f.c.content_hash, f.c.neutral)).all()
    assert sorted(int(r[0]) for r in rows) == sorted(ids.values())
    assert len({r[1] for r in rows}) == 2 and not any(r[2] for r in rows)
    for r in rows:
        for ext in ("mp4", "jpg", "vtt"):
            assert (tmp_path / "videos" / f"{r[1]}.{ext}").is_file()
    out = invoke(monkeypatch, store.url, "campaign", "results", "spring")
    assert out.exit_code == 0, out.output
    assert "completion rate" in out.output and "views (started)" in out.output
    figures = invoke_json(monkeypatch, store.url, "campaign", "results", "spring")["video"]
    assert figures["views"] == 0 and figures["completion_rate"] is None
    assert figures["reason"] == "nobody started the film"
    refused = invoke(monkeypatch, store.url, "campaign", "render-videos", "nothing")
    assert refused.exit_code != 0 and "nothing" in refused.output


def test_figures_on_each_store_and_erasure_removes_own_films(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 3)
    now = utcnow()
    save(store, video_campaign("spring", write_template(tmp_path)), now, tmp_path)
    own, other = fake_film(tmp_path / "videos", 1), fake_film(tmp_path / "videos", 2)
    neutral = fake_film(tmp_path / "videos", 3)
    neutral = type(neutral)(**{**neutral.__dict__, "neutral": True})
    record_films(store, "spring", {ids[1]: own, ids[2]: other, ids[3]: neutral}, now)
    settings = get_settings().model_copy(update={"video_dir": tmp_path / "videos"})
    store.follow(settings)  # the eraser reads the store's settings

    def report(i: int, *events: str) -> None:
        link = video.video_link("spring", ids[i], now, settings).rsplit("/", 1)[1]
        for name in events:
            video_pages.record_event(store, link, name, now=now, settings=settings)

    report(1, "play", "25", "50", "75", "complete")
    report(2, "play", "25", "50")
    report(3, "play", "play", "complete")
    figures = results.measure(store, "spring")["video"]
    assert figures["views"] == 3 and figures["completed"] == 2
    assert figures["completion_rate"] == pytest.approx(2 / 3)
    assert figures["quarters"] == {"25": 2, "50": 2, "75": 1}

    # person 3's film is the neutral one: still shown to others, it stays
    record_films(store, "autumn", {ids[2]: neutral}, now)
    erased = erase_person(store, f"customer_id:C{1}", confirmed=True)
    assert {Path(p).name for p, what in erased.files.items() if what == "removed"} == {
        own.mp4.name,
        own.poster.name,
        own.subtitles.name,
    }
    assert not own.mp4.exists() and other.mp4.exists() and neutral.mp4.exists()
    erased = erase_person(store, f"customer_id:C{3}", confirmed=True)
    assert neutral.mp4.exists() and not erased.files
    f = schema.video_films
    with store.connect() as conn:
        left = sorted(int(r[0]) for r in conn.execute(sa.select(f.c.node_id)))
    assert left == [ids[2], ids[2]]


def _video_group(store: Store) -> dict[str, Any]:
    groups = results.measure(store, "spring")["groups"]
    return next(g for g in groups if g["arm"] == "message" and g["channel"] == "video")


def test_video_as_the_campaigns_own_channel(duckdb_store: Store, tmp_path: Path) -> None:
    store = duckdb_store
    ids = add_people(store, tmp_path, 3, no_email={2, 3})
    refuse(store, ids[3], "web")  # a video page is a page of the web site
    doc = video_campaign("spring", write_template(tmp_path))
    doc["channels"] = {"email": {"subject": "Hello", "text": "-20%"}, "video": {"text": "Film"}}
    doc["policy"] = {"order": ["email", "video"]}
    save(store, doc, utcnow(), tmp_path)
    settings = get_settings().model_copy(update={"video_dir": tmp_path / "videos"})
    published: list[Message] = []

    class Recording(VideoChannel):
        def send(self, messages: Any, on_result: Any = None) -> Any:
            published.extend(messages)
            return super().send(messages, on_result)

    report = service.send(
        store, "spring", utcnow(), channels={"video": Recording()}, folder=tmp_path,
        settings=settings,
    )  # fmt: skip
    # only the person without an e-mail who did not refuse the web gets a film, on their page
    assert report.films == 1 and report.sent is not None and report.sent.counts == {"sent": 1}
    assert [m.person_id for m in published] == [ids[2]] and "/v/" in published[0].to
    f = schema.video_films
    with store.connect() as conn:
        assert [int(r[0]) for r in conn.execute(sa.select(f.c.node_id))] == [ids[2]]
    group = _video_group(store)
    assert group["sent"] == 1 and group["delivered"] == 0
    token = published[0].to.rsplit("/", 1)[1]
    html, node = video_pages.open_page(store, token, now=utcnow(), settings=settings)
    assert node == ids[2] and "<video" in html
    group = _video_group(store)
    assert group["delivered"] == 1 and group["opened"] == 1
