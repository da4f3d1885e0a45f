"""A web page's views and clicks, as Segment messages for the visitor the call proved.

The page reports, per placement it filled, a ``view`` (the placement became visible) and its
``click`` s (a link in it followed). Each becomes a ``track`` message in the words of
Segment's e-commerce spec, ``Promotion Viewed`` or ``Promotion Clicked``, with
``promotion_id`` (the content shown), ``creative`` (the placement), ``decision_id`` and, for
a click, ``url``. The message names the visitor the server verified
(:mod:`surmesure.web.identity`), so never a claim (:mod:`surmesure.unify.trust`): the
logged-in customer's id alone, else the anonymous id. A logged-in visitor's anonymous id is
never linked to them: the shop's cookie alone (a browser after its customer logged out, a
copied cookie) must not open the customer's content once their signed user is gone. Nothing
in the page's words can name anyone else.

The ``messageId`` is made from the visitor, the decision, the kind and (for a click) the URL:
a view sent twice (a page restored from the back-forward cache) is stored once, and nobody
else's report can take its place. An item that does not fit :class:`WebEvent` is refused by
its place (``events[2].decision_id``) and kept in the quarantine, as any refused message.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from surmesure.collect.segment import Accepted, Refusal, validate_messages
from surmesure.web.identity import Visitor

EVENT_NAMES = {"view": "Promotion Viewed", "click": "Promotion Clicked"}
MAX_EVENTS = 20


class WebEvent(BaseModel):
    """One view or click of a placement the page filled."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["view", "click"]
    placement: Annotated[str, Field(min_length=1, max_length=64)]
    decision_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    content_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    url: Annotated[str, Field(max_length=2048)] | None = None


def messages(
    visitor: Visitor, items: Sequence[Any], region: str
) -> tuple[list[Accepted], list[Refusal]]:
    """The messages of ``items`` for ``visitor``, and the items refused (see the module)."""
    raws: list[dict[str, Any]] = []
    places: list[int] = []
    refused: list[Refusal] = []
    for index, item in enumerate(items):
        try:
            found = WebEvent.model_validate(item)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join([f"events[{index}]", *(str(p) for p in error["loc"])])
            refused.append(Refusal(index, None, where, None, f"{where}: {error['msg']}", item))
            continue
        raws.append(_message(visitor, found))
        places.append(index)
    accepted, invalid = validate_messages(raws, region=region, prefix="events")
    for r in invalid:
        refused.append(dataclasses.replace(r, index=places[r.index]))
    return [
        dataclasses.replace(a, index=places[a.index], vouched=frozenset(a.identifiers))
        for a in accepted
    ], sorted(refused, key=lambda r: r.index)


def _message(visitor: Visitor, event: WebEvent) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "creative": event.placement,
        "decision_id": event.decision_id,
    }
    if event.content_id is not None:
        properties["promotion_id"] = event.content_id
    if event.type == "click" and event.url is not None:
        properties["url"] = event.url
    url = event.url if event.type == "click" else ""
    seed = f"{visitor.key}\n{event.type}\n{event.decision_id}\n{url}"
    message: dict[str, Any] = {
        "type": "track",
        "messageId": "web-" + hashlib.sha256(seed.encode()).hexdigest()[:32],
        "event": EVENT_NAMES[event.type],
        "properties": properties,
        "context": {"channel": "web"},
    }
    if visitor.customer_id is None:
        message["anonymousId"] = visitor.anonymous_id
    else:
        message["userId"] = visitor.customer_id
    return message
