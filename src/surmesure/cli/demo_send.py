"""The demo's last step: a small campaign of the demo world on every channel, to local servers.

A segment of a few hundred people (``demo_campaign``: customers of Lyon with a good RFM
segment) gets one campaign per channel, each sent to a server started here: e-mail to an SMTP
server in this process (aiosmtpd), SMS to Kannel (bearerbox + smsbox + the fake SMSC, from
``make system``), paper letters to one PDF with its printer's manifest in ``<out>/paper``, call
tasks to a call list in ``<out>/calls``. The e-mail carries the person's page link
(``{{ page_link }}``, the web channel, :mod:`surmesure.deliver.web`): a few of the links the
SMTP server received are opened here, as ``GET /p/{token}`` opens them, and count as opens of
the e-mail campaign. Then each campaign's status, its results against its control group
(:mod:`surmesure.deliver.results`), and what each server received.
"""

from __future__ import annotations

import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from surmesure.cli.campaign_tables import groups_table
from surmesure.cli.common import console
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.deliver import documents, results, service, web_pages
from surmesure.deliver.channel import Channel
from surmesure.deliver.channels import open_channel
from surmesure.deliver.local import (
    PASSWORD,
    USER,
    Mailbox,
    Phone,
    kannel,
    sendsms_url,
    smtp_server,
)
from surmesure.domain.campaigns import REACHED_BY
from surmesure.domain.segments import SegmentDefinition
from surmesure.segment import membership, repository
from surmesure.store import Store

SEGMENT = {
    "name": "demo_campaign",
    "description": "Customers of Lyon in a good RFM segment: the demo campaign's audience",
    "where": {
        "all": [
            {"trait": {"name": "city", "op": "eq", "value": "Lyon"}},
            {"metric": {"name": "rfm_segment", "op": "in", "value": ["Champions", "Loyal"]}},
        ]
    },
}
FIELDS = {
    "first_name": {"trait": "first_name", "fallback": ""},
    "city": {"trait": "city", "fallback": "votre ville"},
}
HELLO = "Bonjour{% if person.first_name %} {{ person.first_name }}{% endif %}"
#: the four products recommended to the person (name, price in the shop's currency, a link the
#: e-mail channel sends through click tracking), or a neutral block when there are none
PRODUCTS_MJML = (
    "{% if products %}"
    "<mj-text font-size='16px' font-weight='bold'>Choisis pour vous</mj-text>"
    "{% for p in products %}"
    "<mj-text><a href='https://shop.example.com/p/{{ p.product_code }}'>{{ p.name }}</a>"
    "{% if p.price is not none %} : {{ p.price|money(currency) }}{% endif %}</mj-text>"
    "{% endfor %}"
    "{% else %}"
    "<mj-text>Toute la collection vous attend en boutique et sur shop.example.com.</mj-text>"
    "{% endif %}"
)
PRODUCTS_TEXT = (
    "{% if products %}Choisis pour vous :\n"
    "{% for p in products %}- {{ p.name }}"
    "{% if p.price is not none %} : {{ p.price|money(currency) }}{% endif %}\n"
    "  https://shop.example.com/p/{{ p.product_code }}\n{% endfor %}"
    "{% else %}Toute la collection vous attend en boutique et sur shop.example.com.\n"
    "{% endif %}"
)
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    f"<mj-text font-size='20px'>{HELLO},</mj-text>"
    "<mj-text>Le printemps arrive à {{ person.city }} : -20 % sur la nouvelle collection.</mj-text>"
    f"{PRODUCTS_MJML}"
    "<mj-text><a href='{{ page_link }}'>Votre sélection, sur votre page</a></mj-text>"
    "<mj-button href='https://shop.example.com/printemps'>Découvrir</mj-button>"
    "</mj-column></mj-section></mj-body></mjml>"
)
CONTENT: dict[str, dict[str, Any]] = {
    "email": {
        "subject": "Le printemps à {{ person.city }}",
        "text": f"{HELLO},\n\nLe printemps arrive à {{{{ person.city }}}} : -20 % sur la "
        f"nouvelle collection.\n\n{PRODUCTS_TEXT}\nVotre sélection, sur votre page : "
        "{{ page_link }}\n\nhttps://shop.example.com/printemps",
        "html": MJML,
        "currency": "EUR",
    },
    "sms": {"text": "Maison: -20% sur la collection de printemps. STOP 36180", "sender": "MAISON"},
    "paper": {
        "text": f"{HELLO},\n\nLe printemps arrive à {{{{ person.city }}}} : présentez cette "
        "lettre en boutique pour 20 % sur la nouvelle collection.\n\nMaison"
    },
    "phone": {
        "text": f"{HELLO}, ici Maison. Nous vous appelons pour la collection de printemps "
        "(-20 % en boutique à {{ person.city }})."
    },
}
COSTS = {"email": 0.001, "sms": 0.045, "paper": 0.9, "phone": 2.5}
#: views of the first pages whose link the SMTP server received: three people, one reloads
VIEWS = (1, 2, 1)


def channels_to_reach() -> list[str]:
    """The demo's channels a campaign can use here, in order."""
    return [c for c in ("email", "sms", "paper", "phone") if c in REACHED_BY]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1."""
    for _ in range(50):
        with closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count < 65536 and all(_free(base + k) for k in range(count)):
            return base
    raise RuntimeError("no free ports for the demo's servers")


def _free(port: int) -> bool:
    with closing(socket.socket()) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def audience(store: Store, now: datetime) -> int:
    """Save and refresh the demo campaign's segment; its size."""
    repository.save(store, SegmentDefinition.model_validate(SEGMENT), now)
    [done] = membership.refresh(store, [str(SEGMENT["name"])], now)
    return int(done.members)


@contextmanager
def local_channels(out: Path, wanted: list[str]) -> Iterator[tuple[dict[str, Channel], Any]]:
    """The demo's channels, each to a server started here, and the servers' records."""
    settings = get_settings()
    with ExitStack() as stack:
        opened: dict[str, Channel] = {}
        servers: dict[str, Any] = {}
        if "email" in wanted:
            port = free_ports(1)
            servers["email"] = stack.enter_context(smtp_server(port))
            url = f"smtp://127.0.0.1:{port}?sender=offres@maison.example&pool=2&track=1"
            opened["email"] = open_channel(url, settings)
        if "sms" in wanted:
            base = free_ports(4)
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kannel-")))
            servers["sms"] = stack.enter_context(kannel(folder, base))
            host = sendsms_url(base).removeprefix("http://").split("/")[0]
            opened["sms"] = open_channel(f"kannel://{USER}:{PASSWORD}@{host}", settings)
        if "paper" in wanted:
            opened["paper"] = open_channel(f"paper://{(out / 'paper').resolve()}", settings)
        if "phone" in wanted:
            opened["phone"] = open_channel(f"calls://{(out / 'calls').resolve()}", settings)
        try:
            yield opened, servers
        finally:
            for channel in opened.values():
                channel.close()


def send_demo(store: Store, out: Path, now: datetime) -> dict[str, Any]:
    """Send the demo campaigns (one per channel) and say what each server received."""
    wanted = channels_to_reach()
    size = audience(store, now)
    statuses: dict[str, Any] = {}
    with local_channels(out, wanted) as (opened, servers):
        for channel in wanted:
            name = f"demo_{channel}"
            document = {
                "name": name,
                "description": f"The demo's spring campaign, by {channel}",
                "audience": {"segment": SEGMENT["name"]},
                "topic": "offers",
                "channels": {channel: CONTENT[channel] | {"fields": FIELDS}},
                "policy": {"order": [channel]},
                "control": 0.1,
                "costs": {channel: COSTS[channel]},
            }
            documents.save(store, documents.parse(document), now)
            before = service.status(store, name)["by_status"].get("sent", 0)
            service.send(store, name, now, channels={channel: opened[channel]}, batch=500)
            statuses[channel] = service.status(store, name)
            if channel == "sms":  # Kannel delivers in the background: wait for this run's
                sent_now = statuses[channel]["by_status"].get("sent", 0) - before
                servers["sms"].wait_for(sent_now, seconds=30)  # (none when run again)
        received = _received(out, servers, statuses)
        pages = open_pages(store, servers["email"]) if "email" in servers else None
    measured = {channel: results.measure(store, f"demo_{channel}") for channel in wanted}
    if pages is not None:
        pages["opened"] = sum(
            g["opened"]
            for g in measured["email"]["groups"]
            if g["arm"] == "message" and g["channel"] == "email"
        )
    return {
        "segment": SEGMENT["name"],
        "audience": size,
        "campaigns": statuses,
        "results": measured,
        **received,
        **({"pages": pages} if pages is not None else {}),
    }


def open_pages(store: Store, mailbox: Mailbox) -> dict[str, Any]:
    """Open the pages of the first links the SMTP server received (``VIEWS`` times each), now,
    as ``GET /p/{token}`` does: each view is an open of the e-mail campaign that carried it
    (the links were signed when they left, by the clock, not the demo world's day)."""
    clock = time.perf_counter()
    settings = get_settings()
    page_link = re.compile(re.escape(settings.public_url.rstrip("/")) + r"/p/[A-Za-z0-9_\-.]+")
    links = []
    parser = BytesParser(policy=policy.default)
    for raw in mailbox.contents:
        body = parser.parsebytes(raw).get_body(("plain",))
        links.extend(page_link.findall(body.get_content())[:1] if body is not None else [])
    views = 0
    for link, times in zip(links, VIEWS, strict=False):
        for _ in range(times):
            token = link.rsplit("/", 1)[1]
            web_pages.open_page(store, token, now=utcnow(), settings=settings)
            views += 1
    return {
        "links": len(links),
        "examples": links[:2],
        "pages_viewed": min(len(links), len(VIEWS)),
        "views": views,
        "seconds": round(time.perf_counter() - clock, 2),
    }


def _received(out: Path, servers: dict[str, Any], statuses: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "email" in servers:
        found["smtp_messages"] = len(servers["email"].received)
    if "sms" in servers:
        phone: Phone = servers["sms"]
        found["sms_messages"] = len(phone.lines)
    pdfs = sorted((out / "paper").glob("*.pdf"))
    if pdfs:
        found["paper_pdfs"] = [str(p) for p in pdfs]
    lists = sorted((out / "calls").glob("*.csv"))
    if lists:
        found["call_lists"] = [str(p) for p in lists]
    return found


def print_sent(sent: dict[str, Any]) -> None:
    """Each demo campaign's status, and what the servers received."""
    table = Table(title=f"campaigns to {sent['segment']} ({sent['audience']:,} people)")
    for column in ("campaign", "channel", "messages", "sent", "held out", "suppressed", "failed",
                   "cost"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("campaign", "channel") else "right")
    for channel, status in sent["campaigns"].items():
        # the campaign's own channel first, then the web messages its page links delivered
        for shown in sorted(status["by_channel"], key=lambda c: c != channel):
            by = status["by_channel"][shown]
            table.add_row(
                status["campaign"],
                shown,
                f"{sum(by.values()):,}",
                f"{by.get('sent', 0):,}",
                f"{by.get('held_out', 0):,}",
                f"{by.get('suppressed', 0):,}",
                f"{by.get('failed', 0):,}",
                f"{status['cost']:.2f}" if shown == channel else "",
            )
    console.print(table)
    for measured in sent.get("results", {}).values():
        console.print(groups_table(measured))
    if "smtp_messages" in sent:
        console.print(f"SMTP server received {sent['smtp_messages']:,} e-mails.")
    if "pages" in sent:
        _print_pages(sent["pages"])
    if "sms_messages" in sent:
        console.print(f"Kannel's fake SMSC received {sent['sms_messages']:,} SMS.")
    for path in sent.get("paper_pdfs", []):
        console.print(f"Letters to print: [bold]{escape(path)}[/] (manifest beside it).")
    for path in sent.get("call_lists", []):
        console.print(f"Call list: [bold]{escape(path)}[/].")
    console.print(
        "See each one with [bold]surmesure campaign status demo_email[/] and "
        "[bold]surmesure campaign results demo_email[/] (and demo_sms, ...)."
    )


def _print_pages(pages: dict[str, Any]) -> None:
    console.print(
        f"{pages['links']:,} e-mails carried their person's page link (the web channel); "
        f"{pages['pages_viewed']} pages viewed {pages['views']} times here count as "
        f"{pages['opened']} opens of demo_email ({pages['seconds']:.1f} s). Open one with "
        "[bold]surmesure serve --dev[/]:"
    )
    for link in pages["examples"]:
        console.print(f"  {link}", markup=False, highlight=False)
