"""How a setting's value is read and checked (:class:`surmesure.config.Settings` applies these).

Each function takes the value as read from the environment (a ``*_text`` one: the raw text,
before any JSON decoding) and returns it checked and normalised, or raises :class:`ValueError`
whose message names the setting, the value at fault and how to write it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, TypeVar

import orjson

from surmesure.domain.rates import parse_rates
from surmesure.ops.schedule import parse_schedule

INLINE = "inline"
"""``dispatch``: changes are handed on in the process that stored them."""
CLIENT_GROUPS = ("pages", "links", "gateways")
"""Groups of the routes that take no key, limited per client address
(:mod:`surmesure.api.clients`)."""
MAX_RETENTION_DAYS = 36_500
"""The longest retention a setting may name (a hundred years; 0 keeps for ever)."""
RETENTION_KINDS = ("events", "decisions", "quarantine", "audit", "videos")
"""The kinds of record ``retention_days`` may name."""
LANGUAGES = ("fr", "en")
"""The languages a preference topic is labelled in."""

V = TypeVar("V")


def dispatch(value: str) -> str:
    """``inline`` or the URL of a NATS server (``nats://``, ``tls://``)."""
    if value != INLINE and not value.startswith(("nats://", "tls://")):
        raise ValueError(
            f"dispatch is {value!r}; write inline or the URL of a NATS server, "
            "e.g. nats://127.0.0.1:4222"
        )
    return value


def _limits(setting: str, value: dict[str, str]) -> dict[str, str]:
    """``value`` when each of its limits reads (``1000/second``); ``ValueError`` naming the
    first that does not."""
    from limits import parse

    for name, limit in value.items():
        try:
            parse(limit)
        except ValueError:
            raise ValueError(
                f"{setting}[{name!r}] is {limit!r}; write e.g. '1000/second'"
            ) from None
    return value


def rate_limits(value: dict[str, str]) -> dict[str, str]:
    """Scope -> a limit each reads (``1000/second``)."""
    return _limits("rate_limits", value)


def one_limit(value: str) -> str:
    """A limit that reads (``10/second``)."""
    return _limits("web_visitor_rate_limit", {"visitor": value})["visitor"]


def client_rate_limits(value: dict[str, str]) -> dict[str, str]:
    """Group (one of :data:`CLIENT_GROUPS`) -> a limit each reads."""
    for group in value:
        if group not in CLIENT_GROUPS:
            raise ValueError(
                f"client_rate_limits has the group {group!r}; use {', '.join(CLIENT_GROUPS)}"
            )
    return _limits("client_rate_limits", value)


def trusted_proxies(value: list[str]) -> list[str]:
    """Addresses or networks, each as :func:`ipaddress.ip_network` reads it."""
    for proxy in value:
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise ValueError(
                f"trusted_proxies has {proxy!r}; write an address or a network, "
                "e.g. 10.0.0.5 or 10.0.0.0/8"
            ) from None
    return value


def retention_days(value: dict[str, int]) -> dict[str, int]:
    """Kind (one of :data:`RETENTION_KINDS`) -> days from 0 to :data:`MAX_RETENTION_DAYS`."""
    for kind, days in value.items():
        if kind not in RETENTION_KINDS or not 0 <= days <= MAX_RETENTION_DAYS:
            raise ValueError(
                f"retention_days[{kind!r}] = {days}; use kinds {', '.join(RETENTION_KINDS)} "
                f"and a number of days from 0 to {MAX_RETENTION_DAYS} (0 keeps for ever)"
            )
    return value


def lower_keys(value: dict[str, V]) -> dict[str, V]:
    """``value`` keyed by source names in lower case (as sources are looked up)."""
    return {k.lower(): v for k, v in value.items()}


def source_reliability(value: dict[str, float]) -> dict[str, float]:
    """Source -> a reliability in [0, 1], keyed in lower case."""
    for source, reliability in value.items():
        if not 0.0 <= reliability <= 1.0:
            raise ValueError(
                f"source_reliability[{source!r}] is {reliability}; use a number in [0, 1]"
            )
    return lower_keys(value)


def consent_categories(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """Category -> ``purpose:channel`` pairs of known purposes and channels, keyed in lower
    case."""
    from surmesure.protect.consent import CHANNELS, PURPOSES

    for category, pairs in value.items():
        for pair in pairs:
            purpose, _, channel = pair.partition(":")
            if purpose not in PURPOSES or channel not in CHANNELS:
                raise ValueError(
                    f"consent_categories[{category!r}] has {pair!r}; write purpose:channel "
                    f"with a purpose in {', '.join(PURPOSES)} and a channel in "
                    f"{', '.join(CHANNELS)}"
                )
    return lower_keys(value)


def preference_topics(value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Topic name (lower-case letters, digits and _) -> a label in each of :data:`LANGUAGES`."""
    for name, labels in value.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
            raise ValueError(
                f"preference_topics has the topic {name!r}; write lower-case letters, "
                "digits and _ (at most 64)"
            )
        missing = [lang for lang in LANGUAGES if not labels.get(lang)]
        if missing:
            raise ValueError(
                f"preference_topics[{name!r}] has no label in {', '.join(missing)}; "
                'give one per language, e.g. {"fr": "Offres", "en": "Offers"}'
            )
    return value


def rates_text(value: Any) -> Any:
    """``GBP=1.17,USD=0.92`` -> ``{"GBP": 1.17, "USD": 0.92}``; any other value as it is."""
    if not isinstance(value, str):
        return value
    return _rates([t.strip() for t in value.split(",") if t.strip()])


def rates(value: dict[str, float]) -> dict[str, float]:
    """Currency code -> rate, each as :func:`~surmesure.domain.rates.parse_rates` allows."""
    return _rates([f"{code}={rate}" for code, rate in value.items()])


def _rates(texts: list[str]) -> dict[str, float]:
    try:
        return parse_rates(texts)
    except ValueError as exc:
        raise ValueError(
            f"rates has {exc}; write CUR=RATE separated by commas, e.g. GBP=1.17,USD=0.92"
        ) from None


def schedule_text(value: Any) -> Any:
    """``off`` -> no job; other text -> the JSON object it holds; any other value as it is."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() == "off":
        return {}
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ValueError(
            f"schedule is {value!r}; write a JSON object of job -> rule, e.g. "
            '{"derive": "daily 03:00", "segment_refresh": "every 15m"}, or off'
        ) from None


def schedule(value: dict[str, str]) -> dict[str, str]:
    """Job -> rule, each as :func:`~surmesure.ops.schedule.parse_schedule` reads it."""
    parse_schedule(value)
    return value
