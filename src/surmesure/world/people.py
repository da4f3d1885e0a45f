"""The true customers of the demo world: who they are and how they behave.

Every customer has a customer id (the CRM is the master file), a name, an address in a French
city, a home store and, for most, an e-mail address and a mobile phone. Behaviour is latent:
a purchase rate (gamma-distributed, so a few customers buy often and many rarely), a chance to
lapse after each purchase (beta-distributed, as in the BG/NBD model), an appetite for the web
channel, an e-mail engagement and a favourite category.

A few households share one e-mail address between two customers (the second one takes the
first one's last name and address); identity resolution must keep them apart. A few customers
use a second e-mail address (``alt_email``) for their loyalty card and their web account: the
shop knows them only by it, until a web order shows it with their customer id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from surmesure.world import text
from surmesure.world.base import DAY, Spec
from surmesure.world.catalog import CATEGORIES, Stores
from surmesure.world.names import (
    DOMAINS,
    FEMALE,
    LANGUAGES,
    LAST,
    MALE,
    STREETS,
    ascii_fold,
    zipf_weights,
)
from surmesure.world.places import CITIES, nearest

HOUSEHOLD_SHARE = 0.004
ALT_EMAIL_SHARE = 0.02
EMAIL_SHARE = 0.92
PHONE_SHARE = 0.78


def customer_ids(index: np.ndarray) -> pa.Array:
    """Customer ids like ``C0104729``: a bijection of the index, so they look unordered."""
    return text.digits((index * 7919 + 104_729) % 10**7, 7, "C")


MOBILE_BLOCKS = np.array([60, 61, 62, 64, 65, 66, 67, 68])
"""Two-digit starts of French mobile numbers whose every continuation is allocated."""


def phone_numbers(index: np.ndarray) -> np.ndarray:
    """French mobile numbers (national significant number, 6xxxxxxxx) in allocated blocks,
    distinct per index (a bijection of the index below 80 million)."""
    slot = (index.astype(np.int64) * 7907 + 1_234_567) % (len(MOBILE_BLOCKS) * 10**7)
    return np.asarray(MOBILE_BLOCKS[slot // 10**7] * 10**7 + slot % 10**7, np.int64)


def loyalty_cards(index: np.ndarray) -> pa.Array:
    """13-digit loyalty card numbers starting with 29, distinct per index."""
    return text.digits((index * 7927 + 3) % 10**11, 11, "29")


def email_addresses(
    rng: np.random.Generator, first: pa.Array, last: pa.Array, number: np.ndarray
) -> pa.Array:
    """Plausible addresses (first.last12@orange.fr, mdupont12@gmail.com...), made distinct
    by ``number``."""

    def fold(names: pa.Array) -> pa.Array:
        distinct = pc.unique(names)
        folded = [
            ascii_fold(n).lower().replace(" ", "").replace("'", "").replace("-", "")
            for n in distinct.to_pylist()
        ]
        return pa.array(folded, pa.string()).take(pc.index_in(names, distinct))

    f, la = fold(first), fold(last)
    n = pa.array(number, pa.int64()).cast(pa.string())
    forms = [
        text.join(f, ".", la, n),
        text.join(text.cut(f, 0, 1), la, n),
        text.join(la, ".", f, n),
        text.join(f, "_", la, n),
    ]
    form = rng.choice(len(forms), size=len(number), p=[0.5, 0.25, 0.15, 0.1])
    weights = np.array([w for _, w in DOMAINS], float)
    domain = text.words(
        [d for d, _ in DOMAINS], rng.choice(len(DOMAINS), len(number), p=weights / weights.sum())
    )
    return text.join(pc.choose(pa.array(form, pa.int8()), *forms), "@", domain)


@dataclass
class People:
    """One element per true customer (arrays of equal length)."""

    customer_id: pa.Array
    gender: np.ndarray  # "f", "m" or "x"
    first_name: pa.Array
    last_name: pa.Array
    birth_date: np.ndarray  # datetime64[D]
    has_birth_date: np.ndarray
    city: np.ndarray
    street: pa.Array
    language: pa.Array
    email: pa.Array  # null when unknown
    alt_email: pa.Array  # a second address, null for most
    phone: np.ndarray  # national significant number; 0 when unknown
    home_store: np.ndarray
    joined: np.ndarray  # seconds
    updated: np.ndarray  # seconds: last update of the CRM record
    household: np.ndarray  # shares the e-mail address of the previous customer
    rate: np.ndarray  # purchases per day when active
    lapse: np.ndarray  # chance to lapse after a purchase
    alive: np.ndarray  # still active when the window opens
    web_share: np.ndarray
    engagement: np.ndarray
    favourite: np.ndarray

    @property
    def count(self) -> int:
        return len(self.gender)

    @property
    def has_email(self) -> np.ndarray:
        return np.asarray(self.email.is_valid().to_numpy(zero_copy_only=False))

    @property
    def has_alt_email(self) -> np.ndarray:
        return np.asarray(self.alt_email.is_valid().to_numpy(zero_copy_only=False))

    @property
    def has_phone(self) -> np.ndarray:
        return self.phone > 0


def _names(rng: np.random.Generator, gender: np.ndarray) -> pa.Array:
    female = rng.choice(len(FEMALE), size=len(gender), p=zipf_weights(len(FEMALE), 0.6))
    male = rng.choice(len(MALE), size=len(gender), p=zipf_weights(len(MALE), 0.6))
    either = rng.random(len(gender)) < 0.5
    use_female = (gender == "f") | ((gender == "x") & either)
    return text.where(use_female, text.words(FEMALE, female), text.words(MALE, male))


def home_stores(rng: np.random.Generator, city: np.ndarray, stores: Stores) -> np.ndarray:
    """A store of the customer's city (one of them at random), else the nearest one."""
    lat = np.array([c.latitude for c in CITIES])
    lon = np.array([c.longitude for c in CITIES])
    closest = nearest(lat, lon, stores.latitude, stores.longitude)
    home = closest[city]
    for c in np.unique(stores.city):
        local = np.flatnonzero(stores.city == c)
        if len(local) > 1:
            mine = np.flatnonzero(city == c)
            home[mine] = local[rng.integers(0, len(local), size=len(mine))]
    return np.asarray(home)


def make_people(spec: Spec, stores: Stores) -> People:
    rng = spec.rng("people")
    n = spec.customers
    index = np.arange(n)
    gender = rng.choice(np.array(["f", "m", "x"]), size=n, p=[0.53, 0.46, 0.01])
    first = _names(rng, gender)
    last = text.words(LAST, rng.choice(len(LAST), size=n, p=zipf_weights(len(LAST), 0.7)))
    age = np.clip(rng.normal(44, 15, n), 18, 92)
    birth = (
        np.datetime64(spec.end, "D") - (age * 365.25).astype(int).astype("timedelta64[D]")
    ).astype("datetime64[D]")
    weights = np.array([c.weight for c in CITIES], float)
    city = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    street = text.join(
        pa.array(rng.integers(1, 140, size=n), pa.int64()).cast(pa.string()),
        " ",
        text.words(STREETS, rng.integers(0, len(STREETS), size=n)),
    )
    lang_weights = np.array([w for _, w in LANGUAGES], float)
    language = text.words(
        [code for code, _ in LANGUAGES], rng.choice(len(LANGUAGES), n, p=lang_weights / 1000)
    )
    # households: the second customer takes the first one's name, address and e-mail
    household = np.zeros(n, bool)
    household[1:] = rng.random(n - 1) < HOUSEHOLD_SHARE
    household[1:] &= ~household[:-1]
    source = np.where(household, index - 1, index)
    last = last.take(pa.array(source))
    street = street.take(pa.array(source))
    city = city[source]
    email = email_addresses(rng, first, last, index + 1).take(pa.array(source))
    has_email = (rng.random(n) < EMAIL_SHARE) | household
    has_email[np.flatnonzero(household) - 1] = True
    email = text.null_where(~has_email, email)
    alt = has_email & ~household & (rng.random(n) < ALT_EMAIL_SHARE)
    alt[np.flatnonzero(household) - 1] = False
    alt_email = text.null_where(~alt, email_addresses(rng, first, last, 3 * n + 1 + index))
    phone = np.where(rng.random(n) < PHONE_SHARE, phone_numbers(index), 0)
    # tenure: 60% were customers before the window opened, the others join during it
    before = rng.random(n) < 0.6
    joined = np.where(
        before,
        spec.start_ts - rng.integers(DAY, 6 * 365 * DAY, size=n),
        spec.start_ts + rng.integers(0, spec.end_ts - spec.start_ts - DAY, size=n),
    )
    recent = spec.end_ts - rng.integers(DAY, 300 * DAY, size=n)
    updated = np.maximum(joined + rng.integers(0, 3600, size=n), recent)
    updated = np.minimum(updated, spec.end_ts - 60)
    shares = np.array([c.share for c in CATEGORIES])
    return People(
        customer_id=customer_ids(index),
        gender=gender,
        first_name=first,
        last_name=last,
        birth_date=birth,
        has_birth_date=rng.random(n) < 0.85,
        city=city,
        street=street,
        language=language,
        email=email,
        alt_email=alt_email,
        phone=phone,
        home_store=home_stores(rng, city, stores),
        joined=joined,
        updated=updated,
        household=household,
        rate=np.minimum(rng.gamma(0.9, 3.4 / 365 / 0.9, n), 6 / 30),
        lapse=rng.beta(1.3, 9.0, n),
        alive=~before | (rng.random(n) < 0.7),
        web_share=rng.beta(1.4, 2.4, n),
        engagement=rng.beta(1.2, 3.5, n),
        favourite=rng.choice(len(CATEGORIES), size=n, p=shares / shares.sum()),
    )
