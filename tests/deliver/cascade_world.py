"""Rows that guardrails, channel values and cascades read: messages sent, provider reports,
orders of products, derived metrics, and opens and clicks."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from surmesure.deliver import service
from surmesure.deliver.calls import CallChannel, CallSettings
from surmesure.deliver.paper import PaperChannel, PaperSettings
from surmesure.deliver.reports import record_report
from surmesure.deliver.tracking import activity
from surmesure.store import Store, schema


def sent(
    store: Store, person_id: int, at: datetime, campaign: str = "earlier", channel: str = "email"
) -> str:
    """A message of ``campaign`` sent on ``channel`` to ``person_id`` at ``at``: its id."""
    message_id = uuid.uuid4().hex
    row = {
        "message_id": message_id,
        "campaign": campaign,
        "version": 1,
        "person_id": person_id,
        "channel": channel,
        "step": 0,
        "status": "sent",
        "attempts": 1,
        "planned_at": at,
        "updated_at": at,
        "sent_at": at,
    }
    with store.begin() as conn:
        store.bulk_insert(conn, schema.messages, pa.Table.from_pylist([row]))
    return message_id


def reported(store: Store, person_id: int, status: str, at: datetime) -> None:
    """An e-mail to ``person_id`` that bounced or drew a complaint at ``at``."""
    record_report(store, sent(store, person_id, at), "email", status, at)


def bought(store: Store, person_id: int, product: str, category: str, at: datetime) -> None:
    order_id = uuid.uuid4().hex
    with store.begin() as conn:
        found = conn.execute(
            sa.select(schema.products.c.product_code).where(
                schema.products.c.product_code == product
            )
        ).first()
        if found is None:
            conn.execute(
                schema.products.insert().values(
                    product_code=product, name=product, category=category, updated_at=at
                )
            )
        conn.execute(
            schema.orders.insert().values(
                order_id=order_id,
                person_id=person_id,
                node_id=person_id,
                ordered_at=at,
                is_return=False,
                total_amount=30,
                source="test",
            )
        )
        conn.execute(
            schema.order_lines.insert().values(
                order_id=order_id,
                line_no=1,
                product_code=product,
                quantity=1,
                unit_price=30,
                amount=30,
                is_fee=False,
            )
        )


def metrics(
    store: Store, person_id: int, at: datetime, clv: float | None, **appetence: float
) -> None:
    """The person's derived metrics: CLV and ``appetence_<channel>``."""
    values = {f"appetence_{c}": v for c, v in appetence.items()}
    with store.begin() as conn:
        conn.execute(
            schema.derived_metrics.insert().values(
                person_id=person_id,
                computed_on=at.date(),
                computed_at=at,
                as_of=at.date(),
                expected_value=clv,
                horizon_days=365,
                discount_rate=0.1,
                window_days=365,
                **values,
            )
        )


def responded(store: Store, person_id: int, campaign: str, kind: str, at: datetime) -> None:
    with store.begin() as conn:
        conn.execute(
            schema.channel_activity.insert(),
            [activity(person_id, person_id, "email", kind, at, "tracking", campaign=campaign)],
        )


def send_offline(store: Store, folder: Path, at: datetime) -> service.SendReport:
    """``campaign send spring`` at ``at`` with the paper and call-centre channels writing into
    ``folder`` (``print/`` and ``calls/``)."""
    paper = PaperChannel(PaperSettings.from_url(f"paper://{folder}/print"))
    calls = CallChannel(CallSettings.from_url(f"calls://{folder}/calls"))
    try:
        return service.send(
            store,
            "spring",
            at,
            channels={"paper": paper, "phone": calls},
            folder=folder / "outbox",
            clock=lambda: at,
        )
    finally:
        paper.close()
        calls.close()
