"""Channels' hand-over rates on this machine, each to a local server started here.

- e-mail: render (3 MJML variants compiled once, personal fields and 4 recommended products per
  person, HTML and text parts, one-click unsubscribe link) and hand over through
  :class:`~surmesure.deliver.email.EmailChannel` to a local SMTP server in its own process:
  ``aiosmtpd`` (a full server, the default) or ``sink`` (a minimal asyncio one that only reads
  and answers, to see the channel's own ceiling); beside it, a plain ``smtplib`` loop on one
  connection sending the same bytes;
- SMS: through Kannel (bearerbox + smsbox + fakesmsc, started here) until fakesmsc has received
  every message;
- paper: letters to one PDF with its manifest, laid out by ``--paper-workers`` processes
  (the CPU time per letter, the pool's included, says what an idle machine would do);
  ``bench_paper.py`` times 10,000 letters beside another commit's code and checks the PDF.

    python benchmarks/bench_channels.py [--emails 20000] [--server aiosmtpd|sink]
        [--sms 5000] [--letters 1000] [--paper-workers 2] [--json]
"""

from __future__ import annotations

import argparse
import resource
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template
from typing import Any

import orjson
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deliver"))

from bench_campaign_send import SINK
from surmesure.deliver.channel import Message
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.mjml import compile_mjml
from surmesure.deliver.paper import PaperChannel, PaperSettings
from surmesure.deliver.sms import SmsChannel, SmsSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks

SMTP_PORT, KANNEL_PORT = 18560, 18570
VARIANT = """<mjml><mj-body><mj-section><mj-column>
<mj-text font-size="20px">{title}, $first_name</mj-text>
<mj-text>$intro</mj-text>
$products
<mj-button href="$link">{button}</mj-button>
</mj-column></mj-section></mj-body></mjml>"""
VARIANTS = [
    VARIANT.format(title="Bonjour", button="Voir"),
    VARIANT.format(title="Pour vous", button="Découvrir"),
    VARIANT.format(title="Nouveautés", button="J'en profite"),
]
PRODUCT = '<mj-text><a href="https://shop.example.com/p/$code$n">$name$n</a> $price$n €</mj-text>'


def _smtp_server(kind: str) -> subprocess.Popen[bytes]:
    if kind == "sink":
        command = [sys.executable, "-c", SINK, str(SMTP_PORT)]
    else:
        handler = "aiosmtpd.handlers.Sink"
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{SMTP_PORT}"]
        command += ["-c", handler]
    server = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=1).quit()
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the SMTP server did not start")


def _emails(count: int) -> list[Message]:
    # the templates: each variant compiled once (the MJML compiler caches by source)
    products = "\n".join(
        PRODUCT.replace("$code$n", f"$code{n}")
        .replace("$name$n", f"$name{n}")
        .replace("$price$n", f"$price{n}")
        for n in range(4)
    )
    html = [Template(compile_mjml(v.replace("$products", products))) for v in VARIANTS]
    text = Template("$first_name,\n\n$intro\n\n$lines\n\nVoir : $link\n")
    out = []
    for i in range(count):
        fields: dict[str, Any] = {
            "first_name": f"Client{i}",
            "intro": "Une sélection rien que pour vous.",
            "link": f"https://shop.example.com/o/{i}",
        }
        for n in range(4):
            fields |= {f"code{n}": f"P{(i + n) % 500}", f"name{n}": f"Produit {n}"}
            fields[f"price{n}"] = f"{(i % 90) + n}.90"
        lines = "\n".join(f"- {fields[f'name{n}']} {fields[f'price{n}']} €" for n in range(4))
        body = html[i % 3].substitute(fields)
        out.append(
            Message(
                f"bench-{i}",
                "email",
                f"p{i}@example.org",
                text.substitute(fields, lines=lines),
                "Vos offres",
                html=body,
                person_id=i + 1,
            )
        )
    return out


def bench_email(count: int, server_kind: str) -> dict[str, float]:
    server = _smtp_server(server_kind)
    try:
        links = UnsubscribeLinks("https://shop.example.com", "bench-secret-of-some-length")
        channel = EmailChannel(EmailSettings(port=SMTP_PORT, pool=2, sender="n@ex.com"), links)
        started = time.perf_counter()
        sent = 0
        for start in range(0, count, 1000):
            batch = _emails(min(1000, count - start))
            sent += sum(d.outcome == "sent" for d in channel.send(batch))
        channel_rate = sent / (time.perf_counter() - started)
        data = channel.build(_emails(1)[0])
        channel.close()
        assert isinstance(data, bytes) and sent == count
        plain = smtplib.SMTP("127.0.0.1", SMTP_PORT)
        started = time.perf_counter()
        loops = min(count, 5000)
        for i in range(loops):
            plain.sendmail("n@ex.com", [f"p{i}@example.org"], data)
        plain_rate = loops / (time.perf_counter() - started)
        plain.quit()
    finally:
        server.terminate()
        server.wait()
    return {"email_per_second": channel_rate, "smtplib_loop_per_second": plain_rate}


def bench_sms(count: int) -> dict[str, float]:
    from kannel_box import PASSWORD, USER, kannel, sendsms_url

    with tempfile.TemporaryDirectory() as folder, kannel(Path(folder), KANNEL_PORT) as phone:
        settings = SmsSettings(
            url=sendsms_url(KANNEL_PORT), username=USER, password=PASSWORD, sender="BENCH"
        )
        channel = SmsChannel(settings)
        messages = [
            Message(
                f"s{i}", "sms", f"+3361{i:07d}", f"Bonjour, -{i % 50}% ce week-end. STOP au 38100"
            )
            for i in range(count)
        ]
        started = time.perf_counter()
        results = channel.send(messages)
        accepted = time.perf_counter() - started
        phone.wait_for(count, seconds=120)
        received = time.perf_counter() - started
        channel.close()
        assert all(r.outcome == "sent" for r in results) and len(phone.lines) == count
    return {
        "sms_accepted_per_second": count / accepted,
        "sms_received_per_second": count / received,
    }


def bench_paper(count: int, workers: int = 2) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        settings = PaperSettings(
            folder=Path(folder), return_address="Maison, Lyon", workers=workers
        )
        channel = PaperChannel(settings)
        letters = [
            Message(
                f"l{i}",
                "paper",
                f"Client {i}\n{i % 90 + 1} rue des Lilas\n{69000 + i % 10:05d} LYON",
                "Chère cliente,\n\n" + "Voici nos offres de saison pour vous. " * 15,
                person_id=i,
            )
            for i in range(count)
        ]
        started = time.perf_counter()
        cpu = _cpu()
        results = channel.send(letters)
        seconds = time.perf_counter() - started
        cpu = _cpu() - cpu
        assert all(r.outcome == "sent" for r in results)
        [pdf] = Path(folder).glob("*.pdf")
        pages = len(PdfReader(pdf).pages)
        assert pages == sum(r.units for r in results)
    return {
        "letters": count,
        "pdf_pages": pages,
        "paper_workers": workers,
        "letters_per_second": count / seconds,
        "seconds_for_10000": 10_000 * seconds / count,
        "cpu_ms_per_letter": 1000 * cpu / count,
    }


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the layout pool)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--server", choices=["aiosmtpd", "sink"], default="aiosmtpd")
    parser.add_argument("--sms", type=int, default=5_000)
    parser.add_argument("--letters", type=int, default=1_000)
    parser.add_argument("--paper-workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    if args.emails:
        figures |= bench_email(args.emails, args.server)
    if args.sms:
        figures |= bench_sms(args.sms)
    if args.letters:
        figures |= bench_paper(args.letters, args.paper_workers)
    if args.json:
        print(orjson.dumps(figures).decode())
    else:
        for name, value in figures.items():
            print(f"{name:28} {value:10.1f}")


if __name__ == "__main__":
    main()
