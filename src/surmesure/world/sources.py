"""The customer files, as each source knows the customers.

- ``crm`` (reliable, recent): every customer, by customer id, with most fields; a few rows
  are exported twice.
- ``shop`` (points of sale): loyalty cards with the e-mail address as typed at the till
  (capitals, spaces), sometimes the customer id; a few customers hold two cards, and a few
  gave a second address the CRM does not know (they stay apart until a web order links it).
- ``call_centre``: phone numbers in national formats (06 12 34 56 78), older observations,
  missing fields and contradictions (another spelling of the first name, a former city).
- ``partner`` (a data partner, low reliability): e-mail address and inferred traits, some
  wrong, and prospects who are not customers.

Every record of a customer but those second addresses carries an identifier the CRM also
holds, so unification recovers one person per customer, one per prospect, and one per
customer known at the till by a second address only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from surmesure.world import text
from surmesure.world.base import DAY, Spec
from surmesure.world.catalog import Stores
from surmesure.world.names import FEMALE, LAST, MALE, spelling_variant
from surmesure.world.people import People, email_addresses, loyalty_cards
from surmesure.world.places import CITIES

COLUMNS = (
    "customer_id", "loyalty_card", "email", "phone", "first_name", "last_name", "birth_date",
    "gender", "street", "postcode", "city", "country", "language", "home_store_id", "source",
    "observed_at",
)  # fmt: skip


@dataclass
class SourceFile:
    table: pa.Table
    truth: dict[str, Any] = field(default_factory=dict)
    holders: np.ndarray | None = None  # shop: which customers hold a loyalty card


def _table(count: int, **columns: Any) -> pa.Table:
    """A customers table with every canonical column, in a fixed order (absent = null)."""
    out = {}
    for name in COLUMNS:
        value = columns.get(name)
        out[name] = pa.nulls(count, pa.string()) if value is None else value
    return pa.table(out)


def _cities(city: np.ndarray) -> tuple[pa.Array, pa.Array]:
    return (
        text.words([c.name for c in CITIES], city),
        text.words([c.postcode for c in CITIES], city),
    )


def _phone(nsn: np.ndarray, form: np.ndarray) -> pa.Array:
    """Phone numbers written as people write them: 0 = +33 6 12 34 56 78, 1 = +33612345678,
    2 = 06 12 34 56 78, 3 = 06.12.34.56.78, 4 = 0612345678."""
    d = pa.array(nsn, pa.int64()).cast(pa.string())
    pairs = [text.cut(d, i, i + 2) for i in (1, 3, 5, 7)]
    head = text.cut(d, 0, 1)
    written = [
        text.join("+33 ", head, " ", pairs[0], " ", pairs[1], " ", pairs[2], " ", pairs[3]),
        text.join("+33", d),
        text.join("0", head, " ", pairs[0], " ", pairs[1], " ", pairs[2], " ", pairs[3]),
        text.join("0", head, ".", pairs[0], ".", pairs[1], ".", pairs[2], ".", pairs[3]),
        text.join("0", d),
    ]
    return pc.choose(pa.array(form, pa.int8()), *written)


def crm(spec: Spec, people: People, stores: Stores) -> SourceFile:
    rng = spec.rng("crm")
    n = people.count
    city, postcode = _cities(people.city)
    table = _table(
        n,
        customer_id=people.customer_id,
        email=people.email,
        phone=text.null_where(~people.has_phone, _phone(people.phone, rng.integers(0, 2, n))),
        first_name=people.first_name,
        last_name=people.last_name,
        birth_date=text.dates(people.birth_date, people.has_birth_date),
        gender=pa.array(people.gender, pa.string()),
        street=text.null_where(rng.random(n) < 0.05, people.street),
        postcode=postcode,
        city=city,
        country=pa.array(["FR"] * n, pa.string()),
        language=people.language,
        home_store_id=text.words(stores.ids, people.home_store),
        source=pa.array(["crm"] * n, pa.string()),
        observed_at=text.timestamps(people.updated),
    )
    # an export glitch: a few rows twice, next to each other
    twice = np.flatnonzero(rng.random(n) < 0.003)
    order = np.sort(np.concatenate([np.arange(n), twice]), kind="stable")
    return SourceFile(table.take(pa.array(order)), {"duplicate_rows": len(twice)})


def _typed_email(rng: np.random.Generator, email: pa.Array) -> pa.Array:
    """The address as typed at a till: as is, in capitals, capitalized, or with spaces."""
    form = rng.choice(4, size=len(email), p=[0.55, 0.2, 0.15, 0.1])
    variants = [
        email,
        pc.utf8_upper(email),
        pc.utf8_capitalize(email),
        text.join("  ", email, " "),
    ]
    return pc.choose(pa.array(form, pa.int8()), *variants)


def shop(spec: Spec, people: People, stores: Stores) -> SourceFile:
    rng = spec.rng("shop")
    n = people.count
    holders = np.flatnonzero(rng.random(n) < 0.55)
    second = holders[rng.random(len(holders)) < 0.03]
    who = np.concatenate([holders, second])
    card_index = np.concatenate([holders, n + np.arange(len(second))])
    sort = np.argsort(who, kind="stable")
    who, card_index = who[sort], card_index[sort]
    m = len(who)
    alt = people.has_alt_email[who]
    email = text.where(alt, people.alt_email.take(pa.array(who)), people.email.take(pa.array(who)))
    no_email = ~np.asarray(email.is_valid().to_numpy(zero_copy_only=False))
    with_id = (no_email | people.household[who] | (rng.random(m) < 0.35)) & ~alt
    city, postcode = _cities(people.city[who])
    issued = people.updated[who] - rng.integers(DAY, 400 * DAY, size=m)
    issued = np.maximum(issued, people.joined[who])
    table = _table(
        m,
        customer_id=text.null_where(~with_id, people.customer_id.take(pa.array(who))),
        loyalty_card=loyalty_cards(card_index),
        email=_typed_email(rng, email),
        first_name=people.first_name.take(pa.array(who)),
        last_name=people.last_name.take(pa.array(who)),
        postcode=postcode,
        city=city,
        home_store_id=text.words(stores.ids, people.home_store[who]),
        source=pa.array(["shop"] * m, pa.string()),
        observed_at=text.timestamps(issued),
    )
    cards = np.zeros(n, bool)
    cards[holders] = True
    truth = {"card_holders": len(holders), "second_cards": len(second)}
    return SourceFile(table, truth, holders=cards)


def call_centre(spec: Spec, people: People) -> SourceFile:
    rng = spec.rng("call_centre")
    n = people.count
    who = np.flatnonzero(rng.random(n) < 0.15)
    m = len(who)
    has_phone = people.has_phone[who]
    household = people.household[who]
    email = people.email.take(pa.array(who))
    show_email = (rng.random(m) < 0.4) & ~household
    first = people.first_name.take(pa.array(who))
    renamed = rng.random(m) < 0.25
    variants = {name: spelling_variant(name) for name in FEMALE + MALE}
    spelled = pa.array([variants[f] for f in first.to_pylist()], pa.string())
    moved = rng.random(m) < 0.2
    shift = rng.integers(1, len(CITIES), size=m)
    city_index = np.where(moved, (people.city[who] + shift) % len(CITIES), people.city[who])
    city, postcode = _cities(city_index)
    keep = rng.random((4, m)) > 0.25
    observed = people.updated[who] - rng.integers(30 * DAY, 700 * DAY, size=m)
    table = _table(
        m,
        customer_id=text.null_where(has_phone, people.customer_id.take(pa.array(who))),
        email=text.null_where(~show_email, email),
        phone=text.null_where(~has_phone, _phone(people.phone[who], rng.integers(2, 5, size=m))),
        first_name=text.where(renamed, spelled, text.null_where(~keep[0], first)),
        last_name=text.null_where(~keep[1], people.last_name.take(pa.array(who))),
        birth_date=text.dates(people.birth_date[who], keep[2] & people.has_birth_date[who]),
        postcode=postcode,
        city=text.where(moved, city, text.null_where(~keep[3], city)),
        source=pa.array(["call_centre"] * m, pa.string()),
        observed_at=text.timestamps(observed),
    )
    # people who share an e-mail address are left out of the sample: their records may meet
    shared = household | np.append(people.household[1:], False)[who]
    sample = [
        {
            "customer_id": people.customer_id[int(p)].as_py(),
            "trait": "first_name" if r else "city",
            "crm": (
                people.first_name[int(p)] if r else pa.scalar(CITIES[people.city[p]].name)
            ).as_py(),
            "call_centre": (spelled[i] if r else city[i]).as_py(),
        }
        for i, (p, r) in enumerate(zip(who.tolist(), renamed.tolist(), strict=True))
        if (r or moved[i]) and not shared[i]
    ][:25]
    truth = {
        "contradicted_first_names": int(renamed.sum()),
        "contradicted_cities": int(moved.sum()),
        "contradictions_sample": sample,
    }
    return SourceFile(table, truth)


def partner(spec: Spec, people: People) -> SourceFile:
    rng = spec.rng("partner")
    n = people.count
    known = np.flatnonzero((rng.random(n) < 0.2) & people.has_email & ~people.household)
    prospects = max(1, round(n * 0.08))
    m = len(known) + prospects
    gender = np.concatenate(
        [people.gender[known], rng.choice(np.array(["f", "m"]), size=prospects)]
    )
    first_prospect = text.where(
        gender[len(known) :] == "f",
        text.words(FEMALE, rng.integers(0, len(FEMALE), prospects)),
        text.words(MALE, rng.integers(0, len(MALE), prospects)),
    )
    first = pa.concat_arrays([people.first_name.take(pa.array(known)), first_prospect])
    last_prospect = text.words(LAST, rng.integers(0, len(LAST), prospects))
    email = pa.concat_arrays(
        [
            people.email.take(pa.array(known)),
            email_addresses(rng, first_prospect, last_prospect, n + 1 + np.arange(prospects)),
        ]
    )
    birth = np.concatenate(
        [
            people.birth_date[known]
            + (rng.integers(-3, 4, len(known)) * (rng.random(len(known)) < 0.3) * 365).astype(
                "timedelta64[D]"
            ),
            np.datetime64(spec.end, "D")
            - rng.integers(20 * 365, 70 * 365, prospects).astype("timedelta64[D]"),
        ]
    )
    city_index = np.concatenate([people.city[known], rng.integers(0, len(CITIES), prospects)])
    wrong = rng.random(m) < 0.2
    city_index = np.where(wrong, rng.integers(0, len(CITIES), m), city_index)
    observed = np.concatenate(
        [
            people.updated[known] - rng.integers(60 * DAY, 900 * DAY, size=len(known)),
            spec.start_ts + rng.integers(0, spec.end_ts - spec.start_ts, size=prospects),
        ]
    )
    order = rng.permutation(m)
    city, _ = _cities(city_index)
    table = _table(
        m,
        email=email,
        first_name=first,
        gender=pa.array(gender, pa.string()),
        birth_date=text.dates(birth),
        city=city,
        source=pa.array(["partner"] * m, pa.string()),
        observed_at=text.timestamps(observed),
    ).take(pa.array(order))
    return SourceFile(table, {"known_customers": len(known), "prospects": prospects})
