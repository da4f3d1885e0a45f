"""The campaign façade the CLI, the API and the console call: validate, save, preview, send,
pause, status."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide.content import Chosen
from surmesure.decide.sandbox import TemplateError
from surmesure.deliver import (
    cascade,
    choice,
    documents,
    next_best,
    outbox,
    plan,
    sender,
    video,
    web,
)
from surmesure.deliver.channel import Channel
from surmesure.deliver.content import templates_of
from surmesure.domain.campaigns import CampaignDefinition
from surmesure.errors import Conflict, InvalidInput, NotFound
from surmesure.experiments import catalog
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person


def validate(store: Store, path: Path) -> CampaignDefinition:
    """The document of ``path``, checked against what exists (nothing is saved)."""
    return checked(store, documents.load_file(path), path.parent)


def checked(store: Store, definition: CampaignDefinition, base: Path) -> CampaignDefinition:
    """``definition`` checked against what exists (MJML files read from ``base``), every
    template compiled; nothing is saved."""
    with store.connect() as conn:
        documents.check_references(conn, definition, base)
    templates_of(documents.inline_mjml(definition, base), store.settings)
    return definition


def validate_text(store: Store, text: str) -> CampaignDefinition:
    """A document sent as text (YAML or JSON), checked as :func:`validate` checks a file; it
    names no file (an MJML body goes inline as ``html``)."""
    return checked(store, documents.without_files(documents.parse_text(text)), Path("."))


def known(store: Store, name: str) -> str:
    """``name`` if a campaign has it; :class:`NotFound` otherwise."""
    with store.connect() as conn:
        documents.get(conn, name)
    return name


def overview(store: Store) -> list[dict[str, Any]]:
    """Every campaign (name, version in force, last saved) with its outbox counted by status,
    most recently saved first."""
    c, m = schema.campaigns, schema.messages
    with store.connect() as conn:
        saved = conn.execute(
            sa.select(c.c.name, c.c.version, c.c.updated_at).order_by(
                c.c.updated_at.desc(), c.c.name
            )
        ).all()
        counts = conn.execute(
            sa.select(m.c.campaign, m.c.status, sa.func.count()).group_by(m.c.campaign, m.c.status)
        ).all()
    by_campaign: dict[str, dict[str, int]] = {}
    for campaign, state, n in counts:
        by_campaign.setdefault(campaign, {})[state] = int(n)
    return [
        {
            "campaign": r.name,
            "version": int(r.version),
            "updated_at": r.updated_at,
            "by_status": dict(sorted(by_campaign.get(r.name, {}).items())),
            "paused": by_campaign.get(r.name, {}).get(outbox.PAUSED, 0) > 0,
        }
        for r in saved
    ]


def save_file(store: Store, path: Path, now: datetime) -> documents.Saved:
    return documents.save(store, documents.load_file(path), now, path.parent)


def resolve(
    store: Store, name: str, now: datetime, *, save: bool = True
) -> tuple[CampaignDefinition, int]:
    """The campaign ``name`` in force; a path to a document saves it first (without ``save``:
    reads and checks it, as version 0 when it differs from the one in force)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml", ".json") and path.exists():
        if save:
            name = save_file(store, path, now).name
        else:
            definition = documents.inline_mjml(validate(store, path), path.parent)
            with store.connect() as conn:
                try:
                    saved, version = documents.get(conn, definition.name)
                except NotFound:
                    return definition, 0
            return (saved, version) if saved == definition else (definition, 0)
    with store.connect() as conn:
        return documents.get(conn, name)


@dataclass
class SendReport:
    plan: plan.Plan
    recorded: int
    sent: sender.Sent | None
    films: int = 0
    """Films rendered before sending (the video channel)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.plan.campaign,
            "version": self.plan.version,
            "audience": self.plan.audience,
            "already_planned": self.plan.already,
            "new_rows": self.recorded,
            "plan": self.plan.counts,
            "planned_by_channel": self.plan.by_channel,
            "sent": None if self.sent is None else self.sent.counts,
            "settled_after_crash": None if self.sent is None else self.sent.settled,
            "channels_not_configured": None if self.sent is None else self.sent.waiting,
            "films_rendered": self.films,
        }


@dataclass
class Prepared:
    """A send planned and recorded (:func:`prepare`), its messages waiting to leave
    (:func:`deliver`)."""

    definition: CampaignDefinition
    version: int
    plan: plan.Plan
    recorded: int
    channels: dict[str, Channel]


def send(
    store: Store,
    name: str,
    now: datetime,
    *,
    dry_run: bool = False,
    channels: Mapping[str, Channel] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] = sender.utcnow,
    folder: Path | None = None,
    parallel: int = 4,
    batch: int = 200,
    workers: int = 1,
    urls: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    on_render: Callable[[int, int], None] | None = None,
) -> SendReport:
    """Plan the newcomers, record their rows, render the films the planned messages show
    (:func:`surmesure.deliver.video.render_due`, ``on_render(done, total)`` as they are
    made), then send what is due (nothing with ``dry_run``: the plan is computed and shown,
    nothing is written). With ``workers`` above 1, the channels ``urls`` names are rendered
    and handed over by that many processes (:func:`surmesure.deliver.sender.run`, opened
    with ``settings``)."""
    prepared = prepare(store, name, now, channels=channels, dry_run=dry_run)
    if dry_run:
        return SendReport(prepared.plan, 0, None)
    return deliver(
        store, prepared, now, on_progress=on_progress, clock=clock, folder=folder,
        parallel=parallel, batch=batch, workers=workers, urls=urls, settings=settings,
        on_render=on_render,
    )  # fmt: skip


def prepare(
    store: Store,
    name: str,
    now: datetime,
    *,
    channels: Mapping[str, Channel] | None = None,
    dry_run: bool = False,
) -> Prepared:
    """The first half of :func:`send`: plan the newcomers and record their rows (with
    ``dry_run``, only the plan), the cascade's steps due; :class:`Conflict` when the campaign
    is paused or none of its channels is among ``channels`` (its messages stay planned)."""
    definition, version = resolve(store, name, now, save=not dry_run)
    with store.connect() as conn:
        if not dry_run and outbox.paused(conn, definition.name):
            raise Conflict(
                f"Campaign {definition.name!r} is paused; nothing is sent.",
                field="name",
                hint=f"resume it first (`surmesure campaign resume {definition.name}`)",
            )
        result = plan.plan(store, conn, definition, version, now)
    if dry_run:
        return Prepared(definition, version, result, 0, {})
    if result.experiment is not None:
        try:
            catalog.save(store, result.experiment, now)
        except Conflict as exc:
            raise Conflict(
                f"control: campaign {definition.name!r} already assigned people with another "
                f"control share or holdout; changing it would move them ({exc.message})",
                field="control",
                hint="keep the control share and holdout the campaign started with, or save "
                "it under a new name",
            ) from exc
    with store.begin() as conn:
        recorded = plan.record(store, conn, result, now)
    recorded += _advance(store, definition, version, now)
    configured = {c: ch for c, ch in (channels or {}).items() if c in definition.order}
    if not configured:
        raise Conflict(
            f"No channel of campaign {definition.name!r} is configured; its messages stay planned.",
            field="email_url",
            hint="set SURMESURE_EMAIL_URL (smtp://host:port), SURMESURE_SMS_URL "
            "(kannel://user:password@host:13013), SURMESURE_PAPER_URL (paper:///folder) or "
            "SURMESURE_CALLS_URL (calls:///folder), then run `campaign send` again",
        )
    return Prepared(definition, version, result, recorded, configured)


def deliver(
    store: Store,
    prepared: Prepared,
    now: datetime,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] = sender.utcnow,
    folder: Path | None = None,
    parallel: int = 4,
    batch: int = 200,
    workers: int = 1,
    urls: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    on_render: Callable[[int, int], None] | None = None,
) -> SendReport:
    """The second half of :func:`send`: render the films, send what is due on the prepared
    channels, then the cascade's next steps that fell due meanwhile."""
    definition, version, configured = prepared.definition, prepared.version, prepared.channels
    films = video.render_due(
        store, definition, settings=settings or store.settings, now=now, on_progress=on_render
    )
    sent = sender.run(
        store,
        definition,
        configured,
        clock=clock,
        on_progress=on_progress,
        folder=folder,
        parallel=parallel,
        batch=batch,
        workers=workers,
        urls=urls,
        settings=settings,
    )
    if definition.cascade is not None and _advance(store, definition, version, clock()):
        more = sender.run(
            store,
            definition,
            configured,
            clock=clock,
            folder=folder,
            parallel=parallel,
            batch=batch,
            workers=workers,
            urls=urls,
            settings=settings,
        )
        for key, n in more.counts.items():
            sent.add(key, n)
    sent.waiting = [c for c in definition.order if c not in configured]
    return SendReport(prepared.plan, prepared.recorded, sent, films)


def send_configured(
    store: Store, name: str, now: datetime, settings: Settings, *, dry_run: bool = False
) -> SendReport:
    """:func:`send` on the channels ``settings`` configure, its journal in their outbox
    folder, rendered by their number of worker processes (as ``campaign send --workers``)."""
    from surmesure.deliver.channels import configured, urls

    channels = {} if dry_run else configured(settings)
    try:
        return send(
            store,
            name,
            now,
            dry_run=dry_run,
            channels=channels,
            folder=settings.outbox_dir,
            workers=settings.send_workers,
            urls=urls(settings),
            settings=settings,
        )
    finally:
        for channel in channels.values():
            channel.close()


def render_videos(
    store: Store,
    name: str,
    now: datetime,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render the films the campaign's planned messages show and that are still missing
    (:func:`surmesure.deliver.video.render_due`); how many. Planning is ``campaign send``'s."""
    with store.connect() as conn:
        definition, _ = documents.get(conn, name)
    if not definition.prints_video:
        raise InvalidInput(
            f"Campaign {name!r} shows no film.",
            field="name",
            hint="add a `video` channel or print {{ video_link }} in a message, with "
            "`video: {template: FILE}`",
        )
    return video.render_due(
        store, definition, settings=store.settings, now=now, on_progress=on_progress
    )


def call_list(
    store: Store, name: str, *, limit: int = 500, folder: Path | None = None
) -> dict[str, Any]:
    """Hand the campaign's due call tasks over as a ranked list (highest expected value
    first, the script rendered per person), at most ``limit``: each is then ``sent``, as a
    call list written to a file would be, so a task is handed over once. Planning is
    ``campaign send``'s: only tasks already planned are listed."""
    from surmesure.deliver.calls import ListedCalls

    with store.connect() as conn:
        definition, version = documents.get(conn, name)
    if "phone" not in definition.channels:
        raise InvalidInput(
            f"Campaign {name!r} has no phone channel.",
            field="name",
            hint="add `channels: {phone: ...}` to the campaign, or name another campaign",
        )
    listed = ListedCalls()
    sent = sender.run(store, definition, {"phone": listed}, folder=folder, limit=limit)
    return {
        "campaign": name,
        "version": version,
        "tasks": listed.tasks,
        "failed": sent.counts.get("failed", 0),
        "suppressed": sum(v for k, v in sent.counts.items() if k.startswith("suppressed:")),
    }


def _advance(store: Store, definition: CampaignDefinition, version: int, now: datetime) -> int:
    """Plan the cascade's later steps that are due; the number of new rows."""
    return sum(p.rows.num_rows for p in cascade.advance(store, definition, version, now))


def status(store: Store, name: str) -> dict[str, Any]:
    """Counts of the campaign's outbox: by status, by channel and status, by reason, what
    providers reported last of the messages sent (``reports``: delivered, failed...), and the
    cost of what was sent (``costs`` per message, per SMS segment)."""
    m = schema.messages
    with store.connect() as conn:
        definition, version = documents.get(conn, name)
        rows = conn.execute(
            sa.select(
                m.c.channel,
                m.c.status,
                m.c.reason,
                sa.func.count(),
                sa.func.sum(m.c.units),
                m.c.step,
            )
            .where(m.c.campaign == name)
            .group_by(m.c.channel, m.c.status, m.c.reason, m.c.step)
        ).all()
        reports = _reports(conn, name)
    by_status: dict[str, int] = {}
    by_channel: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    cost = 0.0
    by_step: dict[str, dict[str, int]] = {}
    for channel, state, reason, count, units, step in rows:
        by_status[state] = by_status.get(state, 0) + int(count)
        at = by_step.setdefault(f"{int(step)}: {channel}", {})
        at[state] = at.get(state, 0) + int(count)
        per = by_channel.setdefault(channel, {})
        per[state] = per.get(state, 0) + int(count)
        if state in ("suppressed", "held_out", "failed", "skipped") and reason:
            key = f"{state}:{reason}" if state != "failed" else "failed"
            reasons[key] = reasons.get(key, 0) + int(count)
        if state == "sent":
            per_unit = channel == "sms"  # an SMS costs per segment; a letter, a call, per message
            cost += definition.cost(channel) * float((units or count) if per_unit else count)
    return {
        "campaign": name,
        "version": version,
        "total": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_channel": {k: dict(sorted(v.items())) for k, v in sorted(by_channel.items())},
        "by_step": {k: dict(sorted(v.items())) for k, v in sorted(by_step.items())},
        "reasons": dict(sorted(reasons.items())),
        "reports": reports,
        "cost": round(cost, 4),
    }


def _reports(conn: Connection, name: str) -> dict[str, int]:
    """How many of the campaign's messages each provider status was reported last for
    (``delivered``, ``failed``, ...; see :mod:`surmesure.deliver.reports`)."""
    m, r = schema.messages, schema.delivery_reports
    latest = (
        sa.select(
            r.c.status,
            sa.func.row_number()
            .over(
                partition_by=r.c.message_id, order_by=(r.c.received_at.desc(), r.c.report_id.desc())
            )
            .label("rn"),
        )
        .where(r.c.message_id.in_(sa.select(m.c.message_id).where(m.c.campaign == name)))
        .subquery()
    )
    rows = conn.execute(
        sa.select(latest.c.status, sa.func.count())
        .where(latest.c.rn == 1)
        .group_by(latest.c.status)
    )
    return {str(status): int(n) for status, n in sorted(rows)}


def preview(store: Store, name: str, ref: str, now: datetime) -> dict[str, Any]:
    """What the person ``ref`` names would get from the campaign now, and why (or why not);
    nothing is written."""
    with store.connect() as conn:
        definition, version = documents.get(conn, name)
        person = find_person(conn, ref).person_id
        result = plan.plan(store, conn, definition, version, now)
        m = schema.messages
        stored = conn.execute(
            sa.select(m.c.channel, m.c.status, m.c.reason, m.c.action, m.c.variant)
            .where(m.c.campaign == name, m.c.person_id == person)
            # a web message recorded because another message carried its link is not a plan
            .where(sa.or_(m.c.reason.is_(None), m.c.reason.not_like("link:%")))
            .order_by(m.c.step.desc())
        ).first()
        out: dict[str, Any] = {"campaign": name, "version": version, "person_id": person}
        chosen: Chosen | None = None
        if stored is not None:
            out.update(channel=stored.channel, status=stored.status, reason=stored.reason)
            out["recorded"] = True
            chosen = next_best.chosen(stored.action, stored.variant)
        else:
            ids = result.rows.column("person_id").to_numpy()
            at = np.flatnonzero(ids == person)
            if at.size == 0:
                out.update(status="not_in_audience", reason=_outside(definition))
                return out
            row = {k: result.rows.column(k)[int(at[0])].as_py() for k in result.rows.column_names}
            out.update(channel=row["channel"], status=row["status"], reason=row["reason"])
            out["recorded"] = False
            chosen = next_best.chosen(row["action"], row["variant"])
            note = result.explanations.get(row["message_id"])
            if chosen is not None and note is not None:
                chosen = Chosen(chosen.variant, str(note["reason"]), note)
        if chosen is not None:
            out["next_best_action"] = dict(chosen.explanation) | {"variant": chosen.variant}
        out["why_channel"] = choice.explain(conn, definition, person, now)
        if out["status"] in ("planned", "sending", "sent"):
            try:
                templates = templates_of(definition, store.settings)[out["channel"]]
                seen = templates.audiences(conn, [person], now)
                found = templates.personal(store, conn, seen, now)
                link = None
                if templates.prints_page_link:
                    link = web.page_link(name, person, now, store.settings)
                film = None
                if templates.prints_video_link:
                    film = video.printed(video.video_link(name, person, now, store.settings))
                content = templates.render(seen[person], now, found[person], link, chosen, film)
            except TemplateError as exc:
                out["error"] = exc.to_dict()
                return out
            out["content"] = {
                "subject": content.subject,
                "text": content.text,
                "html": content.html,
            }
            out["explanation"] = content.explanation
    return out


def _outside(definition: CampaignDefinition) -> str:
    if definition.segment is not None:
        return f"not a member of segment {definition.segment!r}"
    return "not an identified person (no customer id, e-mail, phone or loyalty card)"
