"""Relationship data of the demo world: consents, e-mail campaigns and survey answers.

- Consents are asked at sign-up, by purpose and channel (marketing by e-mail and by SMS,
  personalization, profiling); some are refused, a few withdrawn later (preference centre,
  or the unsubscribe link of a campaign).
- Two campaigns a month go to a fifth of the customers who accept marketing e-mail. Opens
  and clicks follow each person's engagement; bad addresses bounce and are not mailed again;
  an unsubscribe withdraws the consent.
- Surveys: CSAT after web orders, NPS after store visits and in a quarterly barometer, CES
  after a return; scores follow the skewed distributions such surveys usually show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from surmesure.world import text
from surmesure.world.base import DAY, Spec, seconds
from surmesure.world.catalog import CATEGORIES, Stores
from surmesure.world.orders import Orders
from surmesure.world.people import People

THEMES = {
    1: "Soldes d'hiver", 2: "Saint-Valentin", 3: "Printemps", 4: "Pâques",
    5: "Fête des mères", 6: "Fête des pères", 7: "Soldes d'été", 8: "Rentrée",
    9: "Nouvelle collection", 10: "Cocooning", 11: "Black Friday", 12: "Noël",
}  # fmt: skip
SHOP_URL = "https://www.exemple-boutique.fr"
NPS = np.array([3, 2, 2, 3, 4, 6, 7, 14, 17, 20, 22], float)
CSAT = np.array([4, 6, 12, 36, 42], float)
CES = np.array([3, 4, 7, 11, 20, 30, 25], float)
COMMENTS = {
    "good": ("Très bon accueil en magasin", "Livraison rapide, merci !", "Produit conforme",
             "Vendeuse de très bon conseil", "Je recommande"),
    "fair": ("Correct sans plus", "Un peu d'attente en caisse", "Taille un peu petite"),
    "bad": ("Colis arrivé en retard", "Article abîmé à la réception",
            "Personne pour me renseigner", "Remboursement trop long"),
}  # fmt: skip


@dataclass
class Consent:
    """Marketing e-mail consent per customer: granted at sign-up, and when it was withdrawn
    through the preference centre (``end_ts`` when never)."""

    email_granted: np.ndarray
    withdrawn: np.ndarray


def consent_state(spec: Spec, people: People) -> Consent:
    rng = spec.rng("consent_state")
    n = people.count
    granted = people.has_email & (rng.random(n) < 0.72)
    leave = granted & (rng.random(n) < 0.05)
    when = np.maximum(people.joined, spec.start_ts) + rng.integers(DAY, 400 * DAY, n)
    return Consent(granted, np.where(leave & (when < spec.end_ts), when, spec.end_ts + DAY))


def _campaign_dates(spec: Spec) -> list[tuple[int, str]]:
    out = []
    year, month = spec.start.year, spec.start.month
    for _ in range(spec.months):
        first = date(year, month, 1)
        tuesday = 1 + (1 - first.weekday()) % 7
        thursday = 1 + (3 - first.weekday()) % 7 + 14
        name = f"{year}-{month:02d}"
        out.append((seconds(date(year, month, tuesday)) + 9 * 3600, f"{name} {THEMES[month]}"))
        out.append((seconds(date(year, month, thursday)) + 9 * 3600, f"{name} Newsletter"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


class EmailCampaigns:
    """The e-mail activity file, one campaign at a time (:meth:`chunks`), in time order
    within a campaign. Once every chunk is drawn, ``unsubscribed`` holds when each customer
    unsubscribed (0 when never)."""

    KINDS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "complained")
    TARGET_SHARE = 0.2

    def __init__(self, spec: Spec, people: People, consent: Consent) -> None:
        self.spec, self.people, self.consent = spec, people, consent
        self.unsubscribed = np.zeros(people.count, np.int64)
        self.campaigns = _campaign_dates(spec)

    def chunks(self) -> Iterator[pa.Table]:
        spec, people, consent = self.spec, self.people, self.consent
        rng = spec.rng("email")
        n = people.count
        bad_address = rng.random(n) < 0.02
        suppressed = np.zeros(n, bool)
        names = [name for _, name in self.campaigns]
        links = [f"{SHOP_URL}/{c.code}" for c in CATEGORIES]
        for c, (send, _) in enumerate(self.campaigns):
            parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray | None]] = []
            eligible = (
                consent.email_granted
                & (people.joined < send)
                & (consent.withdrawn > send)
                & ~suppressed
            )
            who = np.flatnonzero(eligible & (rng.random(n) < self.TARGET_SHARE))
            at = send + rng.integers(0, 1800, len(who))
            parts.append((who, 0, at, None))
            bounce = bad_address[who] | (rng.random(len(who)) < 0.005)
            suppressed[who[bad_address[who]]] = True
            parts.append((who[bounce], 4, at[bounce] + 5, None))
            ok, at = who[~bounce], at[~bounce]
            parts.append((ok, 1, at + 3, None))
            opened = rng.random(len(ok)) < 0.9 * people.engagement[ok]
            ow = at[opened] + rng.exponential(6 * 3600, opened.sum()).astype(np.int64) + 60
            op = ok[opened]
            parts.append((op[ow < spec.end_ts], 2, ow[ow < spec.end_ts], None))
            clicked = (rng.random(len(op)) < 0.15 + 0.35 * people.engagement[op]) & (
                ow + 600 < spec.end_ts
            )
            cw = ow[clicked] + rng.integers(5, 600, clicked.sum())
            parts.append((op[clicked], 3, cw, people.favourite[op[clicked]]))
            leave = (rng.random(len(op)) < 0.006) & (ow + 900 < spec.end_ts)
            parts.append((op[leave], 5, ow[leave] + 120, None))
            self.unsubscribed[op[leave]] = ow[leave] + 120
            suppressed[op[leave]] = True
            complain = (rng.random(len(ok)) < 0.0005) & (at + 7200 < spec.end_ts)
            parts.append((ok[complain], 6, at[complain] + 3600, None))
            who = np.concatenate([p[0] for p in parts])
            kind = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
            when = np.concatenate([p[2] for p in parts])
            url = np.concatenate(
                [p[3] if p[3] is not None else np.full(len(p[0]), -1) for p in parts]
            )
            order = np.lexsort((kind, who, when))
            who, kind, when, url = who[order], kind[order], when[order], url[order]
            utm = f"?utm_source=email&utm_campaign=c{c + 1:03d}"
            yield pa.table(
                {
                    "email": people.email.take(pa.array(who)),
                    "kind": text.words(self.KINDS, kind),
                    "campaign": pa.array([names[c]] * len(who), pa.string()),
                    "url": text.null_where(
                        url < 0, text.join(text.words(links, np.maximum(url, 0)), utm)
                    ),
                    "occurred_at": text.timestamps(when),
                }
            )


def consents(spec: Spec, people: People, consent: Consent, unsubscribed: np.ndarray) -> pa.Table:
    rng = spec.rng("consents")
    n = people.count
    index = np.arange(n)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("who", "p", "c", "g", "when", "e")}
    purposes = ("marketing", "personalization", "profiling")
    channels = ("email", "sms", "any")
    evidence = ("formulaire d'inscription", "centre de préférences", "lien de désinscription")

    def add(who: np.ndarray, p: int, c: int, g: np.ndarray, when: np.ndarray, e: int) -> None:
        for key, value in zip(
            ("who", "p", "c", "g", "when", "e"),
            (who, np.full(len(who), p), np.full(len(who), c), g, when, np.full(len(who), e)),
            strict=True,
        ):
            rows[key].append(np.asarray(value))

    signup = people.joined + 60
    mail = people.has_email
    add(index[mail], 0, 0, consent.email_granted[mail], signup[mail], 0)
    sms = people.has_phone
    add(index[sms], 0, 1, rng.random(int(sms.sum())) < 0.45, signup[sms], 0)
    personal = rng.random(n) < 0.85
    add(index, 1, 2, personal, signup, 0)
    add(index, 2, 2, rng.random(n) < 0.6, signup, 0)
    left = np.flatnonzero(consent.withdrawn < spec.end_ts)
    add(left, 0, 0, np.zeros(len(left), bool), consent.withdrawn[left], 1)
    unsub = np.flatnonzero(unsubscribed > 0)
    add(unsub, 0, 0, np.zeros(len(unsub), bool), unsubscribed[unsub], 2)
    opt_out = np.flatnonzero(personal & (rng.random(n) < 0.03))
    when = np.maximum(people.joined[opt_out], spec.start_ts) + rng.integers(
        DAY, 400 * DAY, len(opt_out)
    )
    keep = when < spec.end_ts
    add(opt_out[keep], 1, 2, np.zeros(int(keep.sum()), bool), when[keep], 1)
    who = np.concatenate(rows["who"])
    order = np.lexsort((np.concatenate(rows["p"]), who, np.concatenate(rows["when"])))

    def col(key: str) -> np.ndarray:
        return np.concatenate(rows[key])[order]

    return pa.table(
        {
            "customer_id": people.customer_id.take(pa.array(who[order])),
            "purpose": text.words(purposes, col("p")),
            "channel": text.words(channels, col("c")),
            "granted": pa.array(col("g"), pa.bool_()),
            "recorded_at": text.timestamps(col("when")),
            "evidence": text.words(evidence, col("e")),
        }
    )


def _scores(rng: np.random.Generator, weights: np.ndarray, count: int, low: int) -> np.ndarray:
    return low + rng.choice(len(weights), size=count, p=weights / weights.sum())


def surveys(spec: Spec, people: People, stores: Stores, orders: Orders) -> pa.Table:
    rng = spec.rng("surveys")
    first, at = np.unique(orders.order * 2 + orders.returned, return_index=True)
    del first
    customer, when = orders.customer[at], orders.when[at]
    web, store, returned = orders.web[at], orders.store[at], orders.returned[at]
    known = (customer >= 0) & (orders.ident[at] > 0)
    parts = []
    for mask, rate, kind, title, via in (
        (known & web & ~returned, 0.06, "csat", "post-achat web", "email"),
        (known & ~web & ~returned, 0.04, "nps", "visite magasin", "sms"),
        (known & returned, 0.15, "ces", "retour produit", "email"),
    ):
        chosen = np.flatnonzero(mask & (rng.random(len(mask)) < rate))
        answered = when[chosen] + rng.integers(DAY, 5 * DAY, len(chosen))
        inside = answered < spec.end_ts
        chosen, answered = chosen[inside], answered[inside]
        parts.append((customer[chosen], answered, store[chosen], kind, title, via))
    for quarter in range(0, spec.months, 3):
        sent = spec.start_ts + (quarter * 30 + 10) * DAY
        panel = np.flatnonzero(people.has_email & (people.joined < sent))
        panel = panel[rng.random(len(panel)) < 0.05]
        answered = sent + rng.integers(3600, 10 * DAY, len(panel))
        keep = answered < spec.end_ts
        parts.append(
            (panel[keep], answered[keep], np.full(int(keep.sum()), -1), "nps",
             "baromètre relation client", "email")
        )  # fmt: skip
    who = np.concatenate([p[0] for p in parts])
    answered = np.concatenate([p[1] for p in parts])
    where = np.concatenate([p[2] for p in parts])
    metric = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
    survey = np.concatenate([np.full(len(p[0]), p[4]) for p in parts])
    channel = np.concatenate([np.full(len(p[0]), p[5]) for p in parts])
    score = np.zeros(len(who), np.int64)
    for name, weights, low in (("nps", NPS, 0), ("csat", CSAT, 1), ("ces", CES, 1)):
        m = np.asarray(metric == name)
        score[m] = _scores(rng, weights, int(m.sum()), low)
    mood = np.where(
        ((metric == "nps") & (score >= 9)) | ((metric != "nps") & (score >= 4 + (metric == "ces"))),
        "good",
        np.where((metric == "nps") & (score <= 6) | (score <= 2), "bad", "fair"),
    )
    comment: list[str | None] = [
        COMMENTS[m][int(k) % len(COMMENTS[m])] if c else None
        for m, k, c in zip(
            mood.tolist(),
            rng.integers(0, 100, len(who)).tolist(),
            (rng.random(len(who)) < 0.15).tolist(),
            strict=True,
        )
    ]
    order = np.argsort(answered, kind="stable")
    store_ids = pa.array([*stores.ids, None], pa.string())
    return pa.table(
        {
            "answer_id": text.digits(np.arange(1, len(who) + 1), 9, "SRV-"),
            "customer_id": people.customer_id.take(pa.array(who[order])),
            "survey": pa.array(survey[order], pa.string()),
            "metric": pa.array(metric[order], pa.string()),
            "score": pa.array(score[order], pa.int64()),
            "comment": pa.array(comment, pa.string()).take(pa.array(order)),
            "channel": pa.array(channel[order], pa.string()),
            "store_id": store_ids.take(
                pa.array(np.where(where < 0, len(stores.ids), where)[order])
            ),
            "answered_at": text.timestamps(answered[order]),
        }
    )
