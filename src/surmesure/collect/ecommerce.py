"""Segment's e-commerce ``Order Completed`` event read as an order, with its lines.

A track call whose ``event`` is ``Order Completed`` (Segment's e-commerce spec v2) is a web
purchase: it becomes an order so that it counts in RFM, CLV, segments and campaign results
like a purchase imported from a file. From its ``properties``:

- ``order_id`` (text or number, at most 64 characters): the order's id. An order is stored
  once per id, so the same event sent again, or an order also imported from a file, is one
  order. Without it the event's ``messageId`` stands for it (so an SDK's retry is still one
  order, but the same order imported from a file too would count twice: send ``order_id``);
- the order's amount: ``total`` (revenue with shipping, tax and discounts), else ``revenue``,
  else the sum of its products' ``price`` x ``quantity`` (0 without products);
- ``currency``: an ISO 4217 code (``EUR``), optional;
- ``products``: a list of objects, each naming its product by ``product_id`` or ``sku`` (at
  most 64 characters), with optional ``name``, ``category``, ``price`` (default 0) and
  ``quantity`` (a whole number >= 1, default 1): one order line each, in order.

Every property is optional, as in Segment's spec, but one given with the wrong type is refused:
:func:`fault` says which (collect refuses the message naming the field, so nothing is stored
half), :func:`read` turns valid properties into a :class:`Purchase`. Pure.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

ORDER_COMPLETED = "Order Completed"
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
MAX_ID = 64


@dataclass(frozen=True, slots=True)
class Line:
    product_code: str
    name: str | None
    category: str | None
    quantity: int
    unit_price: float


@dataclass(frozen=True, slots=True)
class Purchase:
    order_id: str
    total: float
    currency: str | None
    lines: tuple[Line, ...]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _ident(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return 0 < len(str(value).strip()) <= MAX_ID


def _product_fault(i: int, item: Any) -> tuple[str, str] | None:
    place = f"properties.products[{i}]"
    if not isinstance(item, dict):
        return place, "must be an object (product_id, name, price, quantity)"
    if not (_ident(item.get("product_id")) or _ident(item.get("sku"))):
        return f"{place}.product_id", f"give product_id or sku, text of 1 to {MAX_ID} characters"
    price = item.get("price")
    if price is not None and not _number(price):
        return f"{place}.price", "must be a number (the unit price, e.g. 19.9)"
    quantity = item.get("quantity")
    if quantity is not None and not (_number(quantity) and quantity == int(quantity) >= 1):
        return f"{place}.quantity", "must be a whole number of at least 1"
    return None


def fault(properties: dict[str, Any] | None) -> tuple[str, str] | None:
    """``(field, reason with its fix)`` of the first fault of an ``Order Completed``'s
    ``properties``, or ``None`` when they make an order."""
    props = properties or {}
    if props.get("order_id") is not None and not _ident(props["order_id"]):
        return "properties.order_id", (
            f"must be the order's id, text of 1 to {MAX_ID} characters, "
            "so that sending the order again stores it once"
        )
    for key in ("total", "revenue"):
        if props.get(key) is not None and not _number(props[key]):
            return f"properties.{key}", "must be a number (the order's amount, e.g. 59.9)"
    currency = props.get("currency")
    if currency is not None and not (isinstance(currency, str) and _CURRENCY.match(currency)):
        return "properties.currency", "must be an ISO 4217 code of three letters, e.g. EUR"
    products = props.get("products")
    if products is not None and not isinstance(products, list):
        return "properties.products", "must be a list of products"
    for i, item in enumerate(products or []):
        found = _product_fault(i, item)
        if found is not None:
            return found
    return None


def _text(value: Any, size: int) -> str | None:
    return None if value is None else str(value)[:size]


def order_id_of(properties: dict[str, Any], message_id: str) -> str:
    """``order_id``, else the event's ``messageId`` (a digest of it when longer than an
    order id may be)."""
    given = properties.get("order_id")
    if given is not None:
        return str(given).strip()
    if len(message_id) <= MAX_ID:
        return message_id
    return "message-" + hashlib.blake2b(message_id.encode(), digest_size=16).hexdigest()


def read(properties: dict[str, Any] | None, message_id: str) -> Purchase:
    """The purchase valid ``properties`` describe (see the module; :func:`fault` first)."""
    properties = properties or {}
    lines = tuple(
        Line(
            product_code=str(item.get("product_id") or item.get("sku")).strip(),
            name=_text(item.get("name"), 512),
            category=_text(item.get("category"), 128),
            quantity=int(item.get("quantity") or 1),
            unit_price=float(item.get("price") or 0.0),
        )
        for item in properties.get("products") or []
    )
    amount = properties.get("total")
    if amount is None:
        amount = properties.get("revenue")
    if amount is None:
        amount = sum(line.quantity * line.unit_price for line in lines)
    currency = properties.get("currency")
    return Purchase(
        order_id=order_id_of(properties, message_id),
        total=float(amount),
        currency=None if currency is None else str(currency).upper(),
        lines=lines,
    )
