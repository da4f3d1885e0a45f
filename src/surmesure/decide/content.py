"""Rendering a template for one person: the variant, the personal fields, the explanation.

Pure: the person arrives as an :class:`Audience` (resolved traits with their source and
effective reliability, stored segment memberships, opt-out, optionally a segment
:class:`~surmesure.segment.evaluate.Snapshot` for ``when`` rules). Nothing here reads the store.

A neutral audience (unknown person, or opted out of personalization) gets the default variant
and every field's fallback. Bodies and blocks render in the template's output format (``html``:
printed values escaped; ``text``: nothing escaped); subjects are text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2 import meta

from surmesure.decide.sandbox import (
    DEFAULT_TIME_LIMIT_S,
    Sandbox,
    compile_text,
    locale_of,
    render_text,
)
from surmesure.domain.segments import MetricNode, SegmentDefinition, walk
from surmesure.domain.templates import DERIVED_METRICS, TemplateDefinition, Variant
from surmesure.protect.consent import Record as ConsentRecord
from surmesure.protect.marketing import Preference
from surmesure.segment.evaluate import Evaluator, Snapshot, TraitValue


@dataclass(frozen=True)
class Known:
    """A resolved trait as a template sees it."""

    value: Any
    source: str
    effective_reliability: float


@dataclass(frozen=True)
class Audience:
    """What a render knows of one person. ``person_id`` ``None``: nobody known."""

    person_id: int | None
    traits: Mapping[str, Known] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    opted_out: bool = False
    snapshot: Snapshot | None = None
    #: the person's marketing and personalization consent records (any time)
    consents: tuple[ConsentRecord, ...] = ()
    #: the person's topic, frequency and pause records (any time)
    preferences: tuple[Preference, ...] = ()
    #: the derived metrics the template's fields read, with their reliability
    #: (:mod:`surmesure.decide.metrics`)
    metrics: Mapping[str, Known] = field(default_factory=dict)
    #: the blind-index key of the store the person was read from, which a ``when`` rule on
    #: a ``customer_id`` metric compares through (:func:`surmesure.protect.blind.index_key`)
    index_key: bytes = b""

    @property
    def neutral(self) -> bool:
        return self.person_id is None or self.opted_out


NOBODY = Audience(person_id=None)


@dataclass(frozen=True)
class Rendered:
    template: str
    variant: str
    subject: str
    body: str
    explanation: dict[str, Any]
    format: str = "text"


@dataclass(frozen=True)
class _CompiledVariant:
    variant: Variant
    subject: JinjaTemplate | None
    body: JinjaTemplate


class CompiledTemplate:
    """A template compiled once (every variant, every block's text), rendered many times."""

    def __init__(self, definition: TemplateDefinition) -> None:
        self.definition = definition
        name = definition.name
        locale_of(definition.locale)  # loaded now rather than in the first render
        #: the bodies' and blocks' format (``html``: printed values are escaped)
        self.format = definition.output_format
        html = self.format == "html"
        self.variants = [
            _CompiledVariant(
                v,
                compile_text(v.subject, f"{name}/{v.name}/subject") if v.subject else None,
                compile_text(v.body, f"{name}/{v.name}", html=html),
            )
            for v in definition.variants
        ]
        self.blocks = {
            b.content_id: (
                compile_text(b.title, f"{name}/blocks/{b.content_id}/title", html=html),
                compile_text(b.text, f"{name}/blocks/{b.content_id}/text", html=html),
            )
            for b in definition.blocks
        }
        #: until when (``time.monotonic()``) decisions of this template render off the
        #: server's event loop, after one needed more time than the loop gives (see api.decide)
        self.off_loop_until = 0.0
        rules = [v.when for v in definition.variants] + [b.when for b in definition.blocks]
        #: the kinds of data the ``when`` rules read (``segment``: any, through the catalog)
        self.needs: frozenset[str] = frozenset(
            tag.rsplit(".", 1)[1] for rule in rules if rule is not None for tag, _ in walk(rule)
        )
        self.needs_snapshot = bool(self.needs)
        #: the derived metrics the rules read
        self.metrics = metric_names(rules)
        #: the derived metrics the fields read (names of :mod:`surmesure.decide.metrics`)
        sources = list(definition.fields.values())
        if definition.next_best_action is not None:
            sources += definition.next_best_action.features.values()
        self.field_metrics: frozenset[str] = frozenset(
            spec.metric for spec in sources if spec.metric is not None
        )
        #: the ``derived_metrics`` columns the rules and the fields read
        self.columns: frozenset[str] = self.metrics | frozenset(
            DERIVED_METRICS.get(m, m) for m in self.field_metrics
        )
        #: the traits the fields read
        self.field_traits: frozenset[str] = frozenset(
            spec.trait for spec in definition.fields.values() if spec.trait is not None
        )
        #: whether a body or subject prints the ``products`` list (recommendations)
        self.reads_products = any(
            "products" in variables(v.body) or "products" in variables(v.subject)
            for v in definition.variants
        )


def variables(source: str) -> frozenset[str]:
    """The names a template text reads from its context (``person``, ``products``...)."""
    if not source or ("{{" not in source and "{%" not in source):
        return frozenset()
    return frozenset(meta.find_undeclared_variables(_PARSER.parse(source)))


_PARSER = Sandbox(html=False)


def metric_names(rules: Iterable[Any]) -> frozenset[str]:
    """The derived metrics that ``rules`` (``when`` conditions) read."""
    return frozenset(
        leaf.metric.name
        for rule in rules
        if rule is not None
        for _, leaf in walk(rule)
        if isinstance(leaf, MetricNode)
    )


def resolve_fields(
    definition: TemplateDefinition, audience: Audience
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The value of every declared field (a trait, or a derived metric) for ``audience`` and
    why: used, or fallen back with the reason (``unknown_person``, ``opted_out``,
    ``missing``, ``unreliable``)."""
    values: dict[str, Any] = {}
    explained: list[dict[str, Any]] = []
    for name, spec in definition.fields.items():
        threshold = definition.threshold(name)
        note: dict[str, Any] = {"field": name, "threshold": threshold}
        if spec.metric is not None:
            note["metric"] = spec.metric
            held = audience.metrics.get(spec.metric)
        else:
            note["trait"] = spec.trait
            held = audience.traits.get(str(spec.trait))
        if audience.person_id is None:
            reason = "unknown_person"
        elif audience.opted_out:
            reason = "opted_out"
        elif held is None:
            reason = "missing"
        elif held.effective_reliability < threshold:
            reason = "unreliable"
        else:
            reason = ""
        if held is not None and audience.person_id is not None and not audience.opted_out:
            note["source"] = held.source
            note["effective_reliability"] = round(held.effective_reliability, 4)
        if reason:
            values[name] = spec.fallback
            note.update(used=False, reason=reason)
        else:
            assert held is not None
            values[name] = held.value
            note["used"] = True
        explained.append(note)
    return values, explained


def rule_holds(
    segment: str | None,
    when: Any,
    audience: Audience,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> str | None:
    """Why a rule (stored ``segment`` membership and/or in-memory ``when``) holds for
    ``audience``, or ``None`` when it does not."""
    if audience.neutral:
        return None
    reasons = []
    if segment is not None:
        if segment not in audience.segments:
            return None
        reasons.append(f"member of segment {segment!r}")
    if when is not None:
        snapshot = audience.snapshot or snapshot_of(audience)
        if not Evaluator(snapshot, now, catalog, audience.index_key).condition(when):
            return None
        reasons.append("matches its when rule")
    return " and ".join(reasons)


def snapshot_of(audience: Audience) -> Snapshot:
    """A snapshot holding only the audience's traits (no events, orders or consents)."""
    return Snapshot(
        person_id=audience.person_id or 0,
        traits={
            k: TraitValue(v.value, v.effective_reliability) for k, v in audience.traits.items()
        },
    )


def choose_variant(
    compiled: CompiledTemplate,
    audience: Audience,
    now: datetime,
    catalog: Mapping[str, SegmentDefinition],
) -> tuple[_CompiledVariant, str]:
    """The first variant whose rule holds, else the default; with the reason. A template whose
    variants a next best action picks gets the default when no pick was made (a decision and a
    campaign's message render with the pick: see :func:`render`'s ``chosen``)."""
    if compiled.definition.next_best_action is not None:
        return compiled.variants[-1], "next best action not applied here: the default variant"
    if audience.person_id is None:
        return compiled.variants[-1], "unknown person: the neutral default variant"
    if audience.opted_out:
        return compiled.variants[-1], "opted out of personalization: the neutral default variant"
    for candidate in compiled.variants[:-1]:
        why = rule_holds(candidate.variant.segment, candidate.variant.when, audience, now, catalog)
        if why is not None:
            return candidate, why
    return compiled.variants[-1], "default: no earlier variant's rule holds"


def render(
    compiled: CompiledTemplate,
    audience: Audience,
    *,
    now: datetime,
    context: Mapping[str, Any] | None = None,
    offers: Sequence[Mapping[str, Any]] = (),
    products: Sequence[Mapping[str, Any]] = (),
    catalog: Mapping[str, SegmentDefinition] | None = None,
    locale: str | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    with_subject: bool = True,
    links: Mapping[str, str] | None = None,
    chosen: Chosen | None = None,
) -> Rendered:
    """Render ``compiled`` for ``audience``: text and explanation (``with_subject`` false:
    the subject is left empty, for a caller that takes it from another part). ``links``:
    top-level names a campaign's message can print (``page_link``: the person's page).
    ``chosen``: the variant already chosen (by a next best action), in place of the rules."""
    choice = _choice(compiled, audience, now, context, offers, products, catalog, locale, links,
                     chosen)  # fmt: skip
    return _printed(compiled, choice, with_subject, time_limit_s)


def render_parts(
    parts: Sequence[tuple[CompiledTemplate, bool]],
    audience: Audience,
    *,
    now: datetime,
    context: Mapping[str, Any] | None,
    products: Sequence[Mapping[str, Any]],
    links: Mapping[str, str] | None,
    chosen: Chosen | None,
    twinned: bool,
) -> list[Rendered]:
    """The parts of one message (an e-mail's HTML and its text read from it), each
    ``(template, with_subject)`` rendered as :func:`render` renders it, in order.
    ``twinned``: the parts are :func:`twins`, so the variant is chosen and the fields are
    resolved once, for all of them: what each would have chosen and resolved alone."""
    done: list[Rendered] = []
    choice: _Choice | None = None
    for compiled, with_subject in parts:
        if choice is None or not twinned:
            choice = _choice(compiled, audience, now, context, (), products, None, None, links,
                             chosen)  # fmt: skip
        else:
            choice = choice[0], choice[1], dict(choice[2])  # each part its own explanation
        done.append(_printed(compiled, choice, with_subject, DEFAULT_TIME_LIMIT_S))
    return done


_Choice = tuple[int, dict[str, Any], dict[str, Any]]
"""A render's variant (by place), the values its texts read, and its explanation."""


def _choice(
    compiled: CompiledTemplate,
    audience: Audience,
    now: datetime,
    context: Mapping[str, Any] | None,
    offers: Sequence[Mapping[str, Any]],
    products: Sequence[Mapping[str, Any]],
    catalog: Mapping[str, SegmentDefinition] | None,
    locale: str | None,
    links: Mapping[str, str] | None,
    chosen: Chosen | None,
) -> _Choice:
    definition = compiled.definition
    if chosen is None:
        variant, why = choose_variant(compiled, audience, now, catalog or {})
    else:
        variant, why = _named(compiled, chosen.variant), chosen.reason
    person, fields = resolve_fields(definition, audience)
    used_locale = locale or definition.locale
    values = {
        "person": person,
        "context": dict(context or {}),
        "offers": list(offers),
        "products": list(products),
        "currency": definition.currency,
        "locale": used_locale,
        "now": now,
        **(links or {}),
    }
    explanation = {
        "template": definition.name,
        "variant": {"name": variant.variant.name, "reason": why},
        "fields": fields,
        "opted_out": audience.opted_out,
        "locale": used_locale,
    }
    if chosen is not None:
        explanation["next_best_action"] = chosen.explanation
    at = next(i for i, v in enumerate(compiled.variants) if v is variant)
    return at, values, explanation


def _printed(
    compiled: CompiledTemplate, choice: _Choice, with_subject: bool, time_limit_s: float
) -> Rendered:
    at, values, explanation = choice
    variant, used_locale = compiled.variants[at], values["locale"]
    subject = (
        render_text(variant.subject, values, locale=used_locale, time_limit_s=time_limit_s)
        if variant.subject is not None and with_subject
        else ""
    )
    body = render_text(variant.body, values, locale=used_locale, time_limit_s=time_limit_s)
    return Rendered(
        compiled.definition.name, variant.variant.name, subject, body, explanation, compiled.format
    )


def twins(first: CompiledTemplate, second: CompiledTemplate) -> bool:
    """Whether ``second`` chooses its variant and resolves its fields as ``first`` does for
    anyone: the same name, fields, thresholds, locale, currency and next best action, and
    variants of the same names and rules, in the same order (their texts may differ: an
    e-mail's HTML and its text part)."""
    a, b = first.definition, second.definition
    return (
        a.name == b.name
        and a.fields == b.fields
        and a.min_reliability == b.min_reliability
        and a.locale == b.locale
        and a.currency == b.currency
        and a.next_best_action == b.next_best_action
        and [(v.name, v.segment, v.when) for v in a.variants]
        == [(v.name, v.segment, v.when) for v in b.variants]
    )


@dataclass(frozen=True)
class Chosen:
    """A variant chosen before rendering: by name (``None``: the default), why, and the
    explanation of the choice."""

    variant: str | None
    reason: str
    explanation: Mapping[str, Any]


def _named(compiled: CompiledTemplate, name: str | None) -> _CompiledVariant:
    for candidate in compiled.variants:
        if candidate.variant.name == name:
            return candidate
    return compiled.variants[-1]
