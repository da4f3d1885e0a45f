"""Requests per client address on the routes that take no key.

A personal page, a preference centre, an unsubscribe link, the open pixel and tracked links,
and the gateways' callbacks (SMS reports and replies, e-mail bounces) answer whoever holds a
link or knows the URL: a key's rate limit (:class:`surmesure.api.auth.RateLimits`) cannot
guard them. Each route belongs to a group (:data:`GROUPS`) with its own limit per client
address (``SURMESURE_CLIENT_RATE_LIMITS``): over it, the route answers 429 with
``Retry-After``; a tracked link still leads to its target and the pixel still answers its
image, recording nothing (a person never lands on an error for a click; see
:mod:`surmesure.api.tracking`).

The client address is the peer of the connection. ``X-Forwarded-For`` is believed only when
the peer is a proxy named in ``SURMESURE_TRUSTED_PROXIES`` (addresses or networks; none by
default): the address is then read from the header's right end, skipping the trusted proxies,
so a client cannot choose its address by writing the header itself (the left-hand entries are
whatever the client sent). ``surmesure serve`` turns off uvicorn's own reading of the header,
which believes it from 127.0.0.1.

An IPv6 client is counted by its /64 network: a subscriber's line gets at least a /64 (RFC
6177), so an address per request within it is still one client. Counting is in fixed windows:
in Redis when ``SURMESURE_SERVING_CACHE_URL`` names one, so that every server process of the
store shares one limit (:mod:`surmesure.api.shared_counts`), else in this process, as for
keys. In the process, memory is bounded: at most ``SURMESURE_CLIENT_LIMIT_MEMORY`` addresses
are counted at once, the least recently seen forgotten first (an attacker rotating addresses
forgets their own oldest counts, not the server's memory).

Over the limit, a page (``/p/``, ``/preferences/``, ``/u/``) answers an HTML page in its
language with ``Retry-After`` (:class:`TooManyPages`, :func:`busy_page`); the gateways' callbacks
answer the API's JSON error.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse
from limits import parse

from surmesure.api.personal import PersonalPage
from surmesure.api.shared_counts import SharedCounts
from surmesure.errors import TooManyRequests

Group = Literal["pages", "links", "gateways"]
GROUPS: dict[str, str] = {
    "pages": "personal pages (/p/), video pages (/v/), the preference centre (/preferences/) "
    "and unsubscribe links (/u/)",
    "links": "the open pixel and tracked links (/t/), video pages' films and events",
    "gateways": "the SMS gateway's reports and replies (/v1/sms/) and e-mail bounces "
    "(/v1/email/feedback)",
}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    """The trusted proxies as networks (an address is a network of one); ``ValueError``
    naming the first that does not read."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The client's address (see the module): ``peer``, or, when ``peer`` is a trusted
    proxy, the right-most address of the ``X-Forwarded-For`` values that is not one."""
    address = peer or "unknown"
    if not trusted or not forwarded_for:
        return address

    def is_trusted(text: str) -> bool:
        ip = _ip(text)
        return ip is not None and any(ip in network for network in trusted)

    if not is_trusted(address):
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not is_trusted(hop):
            ip = _ip(hop)
            return str(ip) if ip is not None else "unknown"
    return address  # every hop is a proxy of ours


def counted_as(address: str) -> str:
    """The client an address counts as: an IPv4 address itself, an IPv6 one its /64."""
    ip = _ip(address)
    if ip is None or ip.version == 4:
        return address
    if ip.ipv4_mapped is not None:  # ::ffff:203.0.113.7, a dual-stack socket's IPv4 peer
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class ClientLimits:
    """Requests per client address and group, in fixed windows, for at most ``memory``
    addresses (see the module)."""

    def __init__(
        self,
        limits: dict[str, str],
        trusted: Sequence[str] = (),
        memory: int = 100_000,
        *,
        shared: SharedCounts | None = None,
    ) -> None:
        self._items = {group: parse(value) for group, value in limits.items()}
        self.shared = shared
        self.trusted = networks(trusted)
        self.memory = memory
        self._windows: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        """(group, address) -> [end of the current window (monotonic), requests in it],
        least recently seen first"""

    def __len__(self) -> int:
        return len(self._windows)

    def address_of(self, request: Request) -> str:
        """What ``request``'s client is counted as: its address, or its /64 for IPv6."""
        peer = request.client.host if request.client is not None else None
        return counted_as(
            client_address(peer, request.headers.getlist("x-forwarded-for"), self.trusted)
        )

    def wait(self, group: str, address: str) -> int | None:
        """Count one request; ``None`` when within the limit, else the seconds to wait."""
        item = self._items.get(group)
        if item is None:
            return None
        now = time.monotonic()
        key = (group, address)
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            self._windows[key] = [now + item.get_expiry(), 1]
            self._windows.move_to_end(key)
            while len(self._windows) > self.memory:
                self._windows.popitem(last=False)
            return None
        self._windows.move_to_end(key)
        if window[1] < item.amount:
            window[1] += 1
            return None
        return max(1, math.ceil(window[0] - now))

    async def count(self, group: str, address: str) -> int | None:
        """:meth:`wait`, counted in Redis when the limits are shared (in this process when
        Redis does not answer)."""
        item = self._items.get(group)
        if item is None:
            return None
        if self.shared is not None:
            try:
                return await self.shared.wait(item, group, address)
            except Exception as exc:  # a page never fails for its counter: counted here
                self.shared.failed(exc)
        return self.wait(group, address)

    async def hit(self, group: str, request: Request) -> None:
        """Count one request of ``request``'s client; over the limit,
        :class:`TooManyPages` for a page, :class:`TooManyRequests` otherwise."""
        wait = await self.count(group, self.address_of(request))
        if wait is not None:
            error = TooManyPages if group == "pages" else TooManyRequests
            raise error(
                f"Too many requests from this address to {GROUPS.get(group, group)}.",
                retry_after=wait,
                hint=f"wait {wait} s (Retry-After); limits are set with "
                "SURMESURE_CLIENT_RATE_LIMITS",
            )


class TooManyPages(TooManyRequests):
    """A page asked for too often: answered as an HTML page (:func:`busy_page`)."""


def busy_page(request: Request, wait: int) -> HTMLResponse:
    """The 429 page, in the language of the page asked for: a personal page's template
    locale; the preference centre's and unsubscribe pages' ``?lang`` or browser language."""
    from surmesure.decide.page_words import WORDS
    from surmesure.decide.pages import message_page, page_language
    from surmesure.protect.preferences import language

    lang = (
        page_language(request.app.state.settings)
        if request.url.path.startswith("/p/")
        else language(request.query_params.get("lang"), request.headers.get("accept-language"))
    )
    words = WORDS[lang]
    html = message_page(words["busy_title"], words["busy"].format(seconds=wait), lang)
    return PersonalPage(html, 429, {"Retry-After": str(wait)})


def limited(group: Group) -> Callable[[Request], Awaitable[None]]:
    """A dependency counting the request against its client's limit for ``group``."""

    async def dependency(request: Request) -> None:
        limits: ClientLimits = request.app.state.client_limits
        await limits.hit(group, request)

    dependency.client_group = group  # type: ignore[attr-defined]
    return dependency


async def over_limit(request: Request, group: Group) -> bool:
    """Count the request against its client's limit for ``group``: whether it is over (for a
    route that answers anyway, recording nothing)."""
    limits: ClientLimits = request.app.state.client_limits
    return await limits.count(group, limits.address_of(request)) is not None
