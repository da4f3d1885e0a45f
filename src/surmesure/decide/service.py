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

The answer and what the decision log keeps of it are shaped in :mod:`surmesure.decide.answer`,
the offers picked in :mod:`surmesure.decide.offers`, and the decision recorded (then read back
by :func:`~surmesure.decide.decisions.why`) in :mod:`surmesure.decide.decisions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.decide import action_models, answer, decisions, next_best
from surmesure.decide.audience import SERVED, audience_from, find_person_id, load_audience
from surmesure.decide.content import Audience, Chosen, CompiledTemplate, render, resolve_fields
from surmesure.decide.offers import offers as pick_offers
from surmesure.decide.personal import DEFAULT_PRODUCTS, default_recommender, personal
from surmesure.decide.personal import Recommender as Recommender
from surmesure.decide.sandbox import DEFAULT_TIME_LIMIT_S
from surmesure.decide.serving import Serving
from surmesure.decide.serving_cache import may_read
from surmesure.domain.templates import TemplateDefinition
from surmesure.experiments.membership import membership
from surmesure.protect import blind, consent, marketing
from surmesure.segment.repository import catalog as segment_catalog
from surmesure.store.engine import Store
from surmesure.unify.reader import PersonReader, SqlPersonReader, identifier_keys


@dataclass(frozen=True)
class DecideRequest:
    """Who (a person id, an anonymous id or a customer id), where, and in what context."""

    placement: str
    person_id: int | None = None
    anonymous_id: str | None = None
    customer_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    products: int = DEFAULT_PRODUCTS


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
            held_back = answer.suppressed(
                request.placement, person_id, audience, refused_on, at, reason
            )
            decisions.keep(conn, serving, held_back)
            return held_back.result
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
    catalog = segment_catalog(conn) if conn is not None and "segment" in compiled.needs else {}
    locale = str(request.context.get("locale") or definition.locale)
    values = {
        "person": resolve_fields(definition, audience)[0],
        "context": found.context,
        "products": found.products,
        "currency": definition.currency,
        "locale": locale,
        "now": at,
    }
    if held is not None and held.held_out:
        offers: list[dict[str, Any]] = []
        offers_note: list[dict[str, Any]] = [
            {"picked": False, "reason": f"held out ({held.reason})"}
        ]
    else:
        offers, offers_note = pick_offers(
            store, conn, compiled, audience, at, catalog, values, locale, ledger_rows, time_limit_s
        )
    rendered = render(
        compiled,
        audience,
        now=at,
        context=found.context,
        offers=offers,
        products=found.products,
        catalog=catalog,
        locale=locale,
        time_limit_s=time_limit_s,
        chosen=_next_best(conn, definition, audience, held),
    )
    done = answer.decided(
        definition,
        request.placement,
        person_id,
        audience,
        at,
        rendered,
        found,
        offers,
        offers_note,
        held,
        opted_out,
    )
    decisions.keep(conn, serving, done)
    return done.result


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


def audience_channels(compiled: CompiledTemplate, request: DecideRequest) -> tuple[str, ...]:
    """The channels whose personalization refusal holds for a decision: the decision's and the
    template's own (an e-mail decided "for the web" is still an e-mail)."""
    return tuple(dict.fromkeys((compiled.definition.channel, decision_channel(compiled, request))))


def decision_channel(compiled: CompiledTemplate, request: DecideRequest) -> str:
    """The channel a decision is for: the context's, else the template's."""
    return str(request.context.get("channel") or compiled.definition.channel)
