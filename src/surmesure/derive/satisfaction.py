"""Satisfaction from survey answers: NPS, CSAT and CES, per person and over everyone.

Answers dated on or before ``as_of`` count (per person: all of them; overall: those of the
window of ``window_days`` days ending on ``as_of``). The scales are those of ``survey_answers``:

- NPS (0-10): promoters answer 9-10, passives 7-8, detractors 0-6. A person's ``nps_last`` is
  their latest answer and ``nps_group`` its group; the overall NPS is
  ``100 * (promoters - detractors) / answers``, from -100 to 100;
- CSAT (1-5): the share of answers at 4 or 5 (``csat_satisfied_share``);
- CES (1-7): the mean score (``ces_mean``; the lower, the less effort).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel

from surmesure.derive.source import identified_people

SATISFACTION_COLUMNS = (
    "person_id",
    "nps_last",
    "nps_group",
    "csat_satisfied_share",
    "ces_mean",
)


def nps_group(score: ir.IntegerValue) -> ir.StringValue:
    """``promoter`` (9-10), ``passive`` (7-8) or ``detractor`` (0-6)."""
    return ibis.cases((score >= 9, "promoter"), (score >= 7, "passive"), else_="detractor")


def person_answers(backend: Any, as_of: date) -> ir.Table:
    """Answers of identified people on or before ``as_of``: ``person_id``, ``answer_id``,
    ``metric``, ``score``, ``answered_at``."""
    answers = backend.table("survey_answers")
    people = identified_people(backend).select("person_id")
    kept = answers.filter(
        answers.person_id.notnull(),
        answers.answered_at < ibis.timestamp(as_of + timedelta(days=1)),
    )
    return kept.semi_join(people, "person_id").select(
        "person_id", "answer_id", "metric", "score", "answered_at"
    )


def satisfaction(backend: Any, as_of: date) -> ir.Table:
    """Per person who answered a survey (columns ``SATISFACTION_COLUMNS``)."""
    answers = person_answers(backend, as_of)
    nps = answers.filter(answers.metric == "nps")
    # the latest answer; the answer id breaks a tie so every engine keeps the same one
    order = [nps.answered_at.desc(), nps.answer_id.desc()]
    ranked = nps.mutate(rank=ibis.row_number().over(group_by=nps.person_id, order_by=order))
    last = ranked.filter(ranked.rank == 0).select(
        "person_id", nps_last=ranked.score.cast("int16"), nps_group=nps_group(ranked.score)
    )
    scores = answers.group_by("person_id").aggregate(
        csat_answers=(answers.metric == "csat").sum(),
        csat_satisfied=((answers.metric == "csat") & (answers.score >= 4)).sum(),
        ces_mean=answers.score.cast("float64").mean(where=answers.metric == "ces"),
    )
    joined = scores.left_join(last, "person_id")
    return joined.select(
        "person_id",
        "nps_last",
        "nps_group",
        csat_satisfied_share=ibis.ifelse(
            joined.csat_answers > 0,
            joined.csat_satisfied / joined.csat_answers,
            ibis.null("float64"),
        ),
        ces_mean=joined.ces_mean,
    )


class SatisfactionSummary(BaseModel):
    """Overall scores over a window; a score is None when nobody answered that survey."""

    answers: dict[str, int]
    nps: float | None
    csat: float | None
    ces: float | None


def summary(backend: Any, as_of: date, window_days: int = 365) -> SatisfactionSummary:
    """NPS, CSAT (share of 4-5) and CES (mean) over the answers of the window."""
    answers = person_answers(backend, as_of)
    answers = answers.filter(
        answers.answered_at >= ibis.timestamp(as_of - timedelta(days=window_days - 1))
    )
    is_nps, is_csat, is_ces = (answers.metric == m for m in ("nps", "csat", "ces"))
    row = (
        answers.aggregate(
            nps_n=is_nps.sum(),
            promoters=(is_nps & (answers.score >= 9)).sum(),
            detractors=(is_nps & (answers.score <= 6)).sum(),
            csat_n=is_csat.sum(),
            satisfied=(is_csat & (answers.score >= 4)).sum(),
            ces_n=is_ces.sum(),
            ces_mean=answers.score.cast("float64").mean(where=is_ces),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    counts = {k: int(row[f"{k}_n"] or 0) for k in ("nps", "csat", "ces")}
    return SatisfactionSummary(
        answers=counts,
        nps=100 * (row["promoters"] - row["detractors"]) / counts["nps"] if counts["nps"] else None,
        csat=row["satisfied"] / counts["csat"] if counts["csat"] else None,
        ces=float(row["ces_mean"]) if counts["ces"] else None,
    )
