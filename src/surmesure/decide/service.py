"""One decision: for (person, placement, context), the content, offers and products, explained.

:func:`decide` reads the person (nobody known -> a neutral decision, not an error), builds the
context, picks offers from the exposure ledger, asks for recommendations (a personalized list
only when the person has not opted out; popular products otherwise), renders the placement's
template, then records the exposures and the decision with its explanation in one transaction.

The decision's channel is the context's ``channel``, else the template's. A marketing template
(``purpose: marketing``, the default) for a person who refused marketing on that channel or on
the template's own (the context cannot make an e-mail something else)
(:mod:`surmesure.protect.consent`) is *suppressed*: nothing is rendered, offered or recommended,
no exposure is recorded, and the result says so with ``suppressed: {"reason":
"opted_out_marketing", "purpose": "marketing", "channel": ...}`` and ``content`` ``null``; the
decision itself is recorded, so ``why`` shows it. A refusal of personalization on either
channel gives the neutral variant. The same goes, with reason ``paused``, for a person who
paused marketing (until the pause ends), and with reason ``topic_refused`` for a template whose
``topic`` the person left (:mod:`surmesure.protect.marketing`); a block of a left topic is not
offered.

A template that names an ``experiment`` honours its assignment
(:mod:`surmesure.experiments.membership`): a person in its control group or in the global
holdout gets the neutral default variant, popular products and no offers, and the decision
records it (``experiment``: variant, ``held_out``, reason ``control`` or ``global_holdout``).
:func:`why` lists the recent decisions made for a person (transparency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide import action_models, next_best
from surmesure.decide.audience import SERVED, audience_from, find_person_id, load_audience
from surmesure.decide.content import (
    Audience,
    Chosen,
    CompiledTemplate,
    render,
    resolve_fields,
    rule_holds,
)
from surmesure.decide.exposure import (
    Shown,
    choose_blocks,
    exposure_rows,
    new_id,
    pick_blocks,
    record_exposures,
)
from surmesure.decide.personal import DEFAULT_PRODUCTS, default_recommender, personal
from surmesure.decide.personal import Recommender as Recommender
from surmesure.decide.sandbox import DEFAULT_TIME_LIMIT_S, render_text
from surmesure.decide.serving import Serving
from surmesure.decide.serving_cache import may_read
from surmesure.domain.templates import TemplateDefinition
from surmesure.experiments.membership import membership
from surmesure.protect import atrest, blind, consent, marketing
from surmesure.segment.repository import catalog as segment_catalog
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import decode_json
from surmesure.unify.reader import PersonReader, SqlPersonReader, identifier_keys


@dataclass(frozen=True)
class Explanation:
    """Why a decision came out as it did, recorded with it (its ``to_dict`` is what the API
    answers and the decision log keeps): whom it was for (``person``), the variant and each
    field (``content``), the offer blocks (``offers``), the products (``products``) and, in an
    experiment, the assignment (``experiment``)."""

    person: str
    content: Mapping[str, Any]
    offers: Sequence[Mapping[str, Any]]
    products: Mapping[str, Any]
    experiment: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "person": self.person,
            "content": dict(self.content),
            "offers": list(self.offers),
            "products": dict(self.products),
        }
        if self.experiment is not None:
            out["experiment"] = dict(self.experiment)
        return out


@dataclass(frozen=True)
class DecideRequest:
    """Who (a person id, an anonymous id or a customer id), where, and in what context."""

    placement: str
    person_id: int | None = None
    anonymous_id: str | None = None
    customer_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    products: int = DEFAULT_PRODUCTS


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _offers(
    store: Store,
    conn: Connection | None,
    compiled: CompiledTemplate,
    audience: Audience,
    now: datetime,
    catalog: Mapping[str, Any],
    values: dict[str, Any],
    locale: str,
    ledger_rows: tuple[dict[str, datetime], set[str]] | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    eligible, notes = [], []
    for block in compiled.definition.blocks:
        if block.topic is not None and marketing.topic_refused(
            audience.preferences, block.topic, now
        ):
            notes.append(
                {"content_id": block.content_id, "picked": False, "reason": marketing.TOPIC_REFUSED}
            )
            continue
        if block.segment is None and block.when is None:
            eligible.append(block)
            continue
        why = rule_holds(block.segment, block.when, audience, now, catalog)
        if why is None:
            notes.append({"content_id": block.content_id, "picked": False, "reason": "rule"})
        else:
            eligible.append(block)
    if ledger_rows is None:
        picks = pick_blocks(
            store, audience.person_id, eligible, now, compiled.definition.max_blocks, conn=conn
        )
    else:
        seen, before = ledger_rows
        picks = choose_blocks(eligible, seen, before, now, compiled.definition.max_blocks)
    offers = []
    for pick in picks:
        title, text = compiled.blocks[pick.block.content_id]
        offers.append(
            {
                "content_id": pick.block.content_id,
                "title": render_text(title, values, locale=locale, time_limit_s=time_limit_s),
                "text": render_text(text, values, locale=locale, time_limit_s=time_limit_s),
                "expires_at": pick.block.expires_at,
            }
        )
        notes.append({"content_id": pick.block.content_id, "picked": True, "reason": pick.reason})
    return offers, notes


def _read(
    reader: PersonReader,
    store: Store,
    conn: Connection | None,
    compiled: CompiledTemplate,
    request: DecideRequest,
    at: datetime,
    as_of: datetime | None,
    chosen: Recommender | None,
) -> tuple[int | None, Audience, tuple[dict[str, datetime], set[str]], Any]:
    """The person, their audience and the ledger of the template's blocks, through ``reader``
    (the store inside ``conn``, or the serving cache); for the recommendation service, what its
    model already holds of the person."""
    settings = store.settings
    keys = (
        identifier_keys(
            request.anonymous_id,
            request.customer_id,
            settings.default_country,
            blind.index_key(store),
        )
        if request.person_id is None
        else []
    )
    blocks = [b.content_id for b in compiled.definition.blocks]
    read = reader.person(request.person_id, keys, blocks, at)
    audience = audience_from(
        read,
        at,
        settings.trait_half_life_days,
        compiled.needs,
        audience_channels(compiled, request),
        metrics=compiled.field_metrics,
        settings=settings,
    )
    person = None
    if chosen is not None and chosen is default_recommender() and request.products > 0:
        from surmesure.decide.recommend.model import get_model, person_data

        if read.person_id is not None:
            person = person_data(store, get_model(store, conn, as_of), read.person_id)
            if person is None:  # someone the model does not know: read from the store
                may_read()
    return read.person_id, audience, (read.seen, read.shown_before), person


def decide(
    store: Store,
    request: DecideRequest,
    compiled: CompiledTemplate,
    *,
    now: datetime | None = None,
    recommender: Recommender | None = None,
    use_default_recommender: bool = True,
    serving: Serving | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> dict[str, Any]:
    """Make, record and return one decision (see the module). With ``serving``, the person
    and the ledger are read from its view and the records written behind by it, when the
    template's rules need nothing the view does not hold. Each text renders within
    ``time_limit_s``; a render that fails (:class:`~surmesure.decide.sandbox.TemplateError`)
    fails the decision before anything is recorded."""
    at = now or utcnow()
    chosen = recommender or (default_recommender() if use_default_recommender else None)
    if serving is not None and serves_from_memory(compiled):
        return _decide(store, None, request, compiled, at, now, chosen, serving, time_limit_s)
    with store.begin() as conn:  # one transaction: read, decide, record
        return _decide(store, conn, request, compiled, at, now, chosen, None, time_limit_s)


def serves_from_memory(compiled: CompiledTemplate) -> bool:
    """Whether a serving view answers everything ``compiled``'s rules read (an experiment's
    assignments are read from the store)."""
    return (
        compiled.needs <= SERVED
        and compiled.definition.experiment is None
        and compiled.definition.next_best_action is None  # its model is read from the store
    )


def _decide(
    store: Store,
    conn: Connection | None,
    request: DecideRequest,
    compiled: CompiledTemplate,
    at: datetime,
    now: datetime | None,
    chosen: Recommender | None,
    serving: Serving | None,
    time_limit_s: float,
) -> dict[str, Any]:
    settings = store.settings
    definition = compiled.definition
    if serving is not None or compiled.needs <= SERVED:
        reader: PersonReader
        if serving is not None:
            reader = serving.view(compiled.columns)
        else:
            assert conn is not None
            reader = SqlPersonReader(conn, compiled.columns)
        person_id, audience, ledger_rows, person = _read(
            reader, store, conn, compiled, request, at, now, chosen
        )
    else:
        assert conn is not None
        person_id = find_person_id(
            conn,
            person_id=request.person_id,
            anonymous_id=request.anonymous_id,
            customer_id=request.customer_id,
            region=settings.default_country,
        )
        audience = load_audience(
            conn,
            person_id,
            at,
            settings.trait_half_life_days,
            needs=compiled.needs,
            channel=audience_channels(compiled, request),
            metrics=compiled.field_metrics,
        )
        ledger_rows, person = None, None
    channel = decision_channel(compiled, request)
    if definition.purpose == "marketing":
        reason: str | None = None
        refused_on = channel
        # the template's own channel too: an e-mail asked for "for the web" is still an e-mail
        for candidate in dict.fromkeys((definition.channel, channel)):
            if consent.refused(audience.consents, "marketing", candidate, at):
                reason, refused_on = consent.OPTED_OUT_MARKETING, candidate
                break
        if reason is None:
            reason = marketing.held_back(audience.preferences, definition.topic, at)
        if reason is not None:
            return _suppressed(
                store, conn, serving, request, person_id, audience, refused_on, at, reason
            )
    held = None
    opted_out = audience.opted_out
    if definition.experiment is not None:
        assert conn is not None  # an experiment's template is never served from memory
        held = membership(store, conn, definition.experiment, person_id)
        if held.held_out:  # the control's content: neutral, no offers
            audience = replace(audience, opted_out=True)
    found = personal(
        store,
        conn,
        audience,
        at,
        request.context,
        k=request.products,
        recommender=chosen,
        as_of=now,
        person=person,
    )
    context, products, products_note = found.context, found.products, found.products_note
    catalog = segment_catalog(conn) if conn is not None and "segment" in compiled.needs else {}
    locale = str(request.context.get("locale") or definition.locale)
    values = {
        "person": resolve_fields(definition, audience)[0],
        "context": context,
        "products": products,
        "currency": definition.currency,
        "locale": locale,
        "now": at,
    }
    if held is not None and held.held_out:
        offers: list[dict[str, Any]] = []
        offers_note: list[dict[str, Any]] = [
            {"picked": False, "reason": f"held out ({held.reason})"}
        ]
        products_note = {**products_note, "reason": f"held out ({held.reason}): popular products"}
    else:
        offers, offers_note = _offers(
            store, conn, compiled, audience, at, catalog, values, locale, ledger_rows, time_limit_s
        )
    rendered = render(
        compiled,
        audience,
        now=at,
        context=context,
        offers=offers,
        products=products,
        catalog=catalog,
        locale=locale,
        time_limit_s=time_limit_s,
        chosen=_next_best(conn, definition, audience, held),
    )
    content_id = f"{definition.name}/{rendered.variant}"
    expires = at + timedelta(days=definition.expires_days) if definition.expires_days else None
    decision_id = new_id()
    result = {
        "decision_id": decision_id,
        "person_id": person_id,
        "known": person_id is not None,
        "placement": request.placement,
        "decided_at": at,
        "content": {
            "content_id": content_id,
            "template": definition.name,
            "variant": rendered.variant,
            "subject": rendered.subject,
            "body": rendered.body,
            "format": rendered.format,
        },
        "offers": offers,
        "products": products,
        "context": context,
    }
    why = Explanation(
        person=_person_note(request, person_id, audience),
        content=rendered.explanation,
        offers=offers_note,
        products=products_note,
    )
    if held is not None:
        result["experiment"] = held.to_dict()
        why = replace(why, experiment=held.to_dict())
        if held.held_out:
            why = replace(
                why,
                content={
                    **rendered.explanation,
                    "opted_out": opted_out,
                    "variant": {
                        "name": rendered.variant,
                        "reason": f"held out ({held.reason}): the neutral default variant",
                    },
                },
            )
    explanation = why.to_dict()
    result["explanation"] = explanation
    shown = []
    if person_id is not None:
        shown = [Shown(content_id, expires)] + [
            Shown(o["content_id"], o["expires_at"]) for o in offers
        ]
    shown_on = str(context.get("channel") or definition.channel)
    record = {
        "decision_id": decision_id,
        "person_id": person_id,
        "placement": request.placement,
        "context": context,
        "result": {
            k: result[k] for k in ("content", "offers", "products", "experiment") if k in result
        },
        "explanation": explanation,
        "decided_at": at,
    }
    if serving is not None:
        rows = exposure_rows(
            person_id, shown, now=at, channel=shown_on, placement=request.placement
        )
        serving.record(person_id, rows, record, at)
        return result
    assert conn is not None
    if person_id is not None:
        record_exposures(
            conn, person_id, shown, now=at, channel=shown_on, placement=request.placement
        )
    _write_decision(conn, record, at)
    return result


def _next_best(
    conn: Connection | None, definition: TemplateDefinition, audience: Audience, held: Any
) -> Chosen | None:
    """The variant the template's next best action gives (none for a held-out person, who
    gets the neutral content whatever the model says)."""
    if definition.next_best_action is None or (held is not None and held.held_out):
        return None
    assert conn is not None  # never served from memory
    model = action_models.load(conn, definition.next_best_action.model)
    found = next_best.pick(definition, model, audience)
    return Chosen(found.variant, found.reason, found.explanation)


_JSON = atrest.DECISION_COLUMNS


def _write_decision(conn: Connection, record: dict[str, Any], at: datetime) -> None:
    """Insert one decision, sealed when it was made for a person."""
    values = {k: _json_ready(v) if k in _JSON else v for k, v in record.items()}
    sealed = atrest.seal_decisions(conn, [record], now=at)[0]
    if sealed is not None:
        values.update({k: sa.null() for k in _JSON}, sealed=sealed)
    conn.execute(schema.decisions.insert().values(**values))


def audience_channels(compiled: CompiledTemplate, request: DecideRequest) -> tuple[str, ...]:
    """The channels whose personalization refusal holds for a decision: the decision's and the
    template's own (an e-mail decided "for the web" is still an e-mail)."""
    return tuple(dict.fromkeys((compiled.definition.channel, decision_channel(compiled, request))))


def decision_channel(compiled: CompiledTemplate, request: DecideRequest) -> str:
    """The channel a decision is for: the context's, else the template's."""
    return str(request.context.get("channel") or compiled.definition.channel)


def _suppressed(
    store: Store,
    conn: Connection | None,
    serving: Serving | None,
    request: DecideRequest,
    person_id: int | None,
    audience: Audience,
    channel: str,
    at: datetime,
    reason: str,
) -> dict[str, Any]:
    """The decision for a person who refused marketing on ``channel``, paused it or left the
    template's topic: nothing shown, ``reason`` recorded (see the module)."""
    suppressed = {"reason": reason, "purpose": "marketing", "channel": channel}
    explanation = Explanation(
        person=f"person {person_id} {_HELD_BACK.get(reason, reason).format(channel=channel)}: "
        "no marketing content",
        content={"suppressed": reason, "opted_out": audience.opted_out},
        offers=[],
        products={"personalized": False, "reason": reason},
    ).to_dict()
    context = {"channel": channel}
    decision_id = new_id()
    result: dict[str, Any] = {
        "decision_id": decision_id,
        "person_id": person_id,
        "known": person_id is not None,
        "placement": request.placement,
        "decided_at": at,
        "suppressed": suppressed,
        "content": None,
        "offers": [],
        "products": [],
        "context": context,
        "explanation": explanation,
    }
    record: dict[str, Any] = {
        "decision_id": decision_id,
        "person_id": person_id,
        "placement": request.placement,
        "context": context,
        "result": {"suppressed": suppressed, "content": None, "offers": [], "products": []},
        "explanation": explanation,
        "decided_at": at,
    }
    if serving is not None:
        serving.record(person_id, [], record, at)
        return result
    assert conn is not None
    _write_decision(conn, record, at)
    return result


_HELD_BACK = {
    consent.OPTED_OUT_MARKETING: "refused marketing on {channel}",
    marketing.PAUSED: "paused marketing",
    marketing.TOPIC_REFUSED: "left the topic of this content",
}


def _person_note(request: DecideRequest, person_id: int | None, audience: Audience) -> str:
    if person_id is None:
        return "nobody is known by the given id: a neutral decision"
    if audience.opted_out:
        return f"person {person_id} opted out of personalization: everything neutral"
    return f"person {person_id}"


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def why(
    store: Store, person_id: int, *, now: datetime | None = None, days: int = 90, limit: int = 100
) -> list[dict[str, Any]]:
    """The decisions made for ``person_id`` within ``days`` before ``now``, newest first."""
    at = now or utcnow()
    d = schema.decisions
    with store.connect() as conn:
        found = find_person_id(conn, person_id=person_id)
        target = found if found is not None else person_id
        rows = conn.execute(
            sa.select(d)
            .where(d.c.person_id == target, d.c.decided_at >= at - timedelta(days=days))
            .order_by(d.c.decided_at.desc(), d.c.decision_id)
            .limit(limit)
        ).all()
        found_rows = [
            {
                "decision_id": r.decision_id,
                "placement": r.placement,
                "decided_at": r.decided_at,
                "person_id": r.person_id,
                "sealed": r.sealed,
                **{k: decode_json(r._mapping[k]) for k in _JSON},
            }
            for r in rows
        ]
        atrest.open_rows(conn, d, found_rows)
    for row in found_rows:
        del row["person_id"]
    return found_rows
