"""The canonical record of each import kind, as Pydantic models: the contract a file must meet
once its columns are mapped (see :mod:`surmesure.collect.mapping`).

Identifier columns (``customer_id``, ``email``, ``phone``, ``anonymous_id``, ``loyalty_card``)
tie a record to a person; they are normalized during validation. Times without a zone are read
in the mapping's time zone (UTC by default) and stored as naive UTC.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Text = Annotated[str, Field(min_length=1, max_length=512)]
Code = Annotated[str, Field(min_length=1, max_length=64)]

IDENTIFIER_FIELDS = ("customer_id", "loyalty_card", "email", "phone", "anonymous_id")


FORMULA = r"^(=|[+\-@].*[(|!])"
"""Text a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``,
``@SUM(A1)``): refused outside identifiers, since the value would come back out in exports (call
lists, manifests) that people open in a spreadsheet. A phone number's ``+`` is an identifier's,
checked apart."""


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _no_formula(self) -> Record:
        for name, value in self:
            if name in IDENTIFIER_FIELDS or not isinstance(value, str):
                continue
            if re.match(FORMULA, value):
                raise ValueError(
                    f"{name}: starts like a spreadsheet formula ({value[:1]!r}), which a "
                    f"spreadsheet opening an export would run; write the value without it"
                )
        return self


class Identified(Record):
    """A record about a person, known by any of these identifiers."""

    customer_id: Code | None = None
    loyalty_card: Code | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=64)] | None = None
    anonymous_id: Annotated[str, Field(max_length=256)] | None = None


class CustomerRecord(Identified):
    """One customer as a source knows them; every non-identifier field becomes a trait."""

    first_name: Text | None = None
    last_name: Text | None = None
    birth_date: date | None = None
    gender: Literal["f", "m", "x"] | None = None
    street: Text | None = None
    postcode: Annotated[str, Field(max_length=32)] | None = None
    city: Text | None = None
    country: Text | None = None
    language: Annotated[str, Field(min_length=2, max_length=8)] | None = None
    home_store_id: Code | None = None
    source: Annotated[str, Field(max_length=64)] | None = None
    observed_at: datetime | None = None


class OrderLineRecord(Identified):
    """One line of an order (or of a return). No identifier: an anonymous order."""

    order_id: Code
    line_no: Annotated[int, Field(ge=0)] | None = None
    ordered_at: datetime
    product_code: Code
    description: Annotated[str, Field(max_length=512)] | None = None
    quantity: int
    unit_price: float
    store_id: Code | None = None
    channel: Annotated[str, Field(max_length=32)] | None = None
    country: Annotated[str, Field(max_length=64)] | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    is_return: bool | None = None


class ProductRecord(Record):
    product_code: Code
    name: Annotated[str, Field(max_length=512)] | None = None
    category: Annotated[str, Field(max_length=128)] | None = None
    price: Annotated[float, Field(ge=0)] | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None


class StockRecord(Record):
    product_code: Code
    store_id: Code
    quantity: Annotated[int, Field(ge=0)]
    updated_at: datetime | None = None


class StoreRecord(Record):
    store_id: Code
    name: Annotated[str, Field(max_length=256)] | None = None
    city: Annotated[str, Field(max_length=128)] | None = None
    postcode: Annotated[str, Field(max_length=32)] | None = None
    country: Annotated[str, Field(max_length=64)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None


class SurveyRecord(Identified):
    """A survey answer: NPS 0-10, CSAT 1-5 or CES 1-7 (checked against ``metric``)."""

    answer_id: Code | None = None
    survey: Annotated[str, Field(max_length=128)] | None = None
    metric: Literal["nps", "csat", "ces"]
    score: int
    comment: Annotated[str, Field(max_length=4000)] | None = None
    channel: Annotated[str, Field(max_length=32)] | None = None
    store_id: Code | None = None
    answered_at: datetime


SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class EmailActivityRecord(Identified):
    kind: Literal["sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "complained"]
    campaign: Annotated[str, Field(max_length=256)] | None = None
    url: Annotated[str, Field(max_length=1024)] | None = None
    occurred_at: datetime


class ConsentRecord(Identified):
    purpose: Literal["marketing", "personalization", "profiling", "analytics"]
    channel: Literal["email", "sms", "phone", "paper", "web", "any"] = "any"
    granted: bool
    recorded_at: datetime
    evidence: Annotated[str, Field(max_length=512)] | None = None


KINDS: dict[str, type[Record]] = {
    "customers": CustomerRecord,
    "orders": OrderLineRecord,
    "products": ProductRecord,
    "stock": StockRecord,
    "stores": StoreRecord,
    "surveys": SurveyRecord,
    "email": EmailActivityRecord,
    "consents": ConsentRecord,
}
