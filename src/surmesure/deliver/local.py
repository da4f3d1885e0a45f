"""Local servers to send to, started here: a real Kannel and an SMTP server that keeps count.

For the demo, the tests and the benchmarks. :func:`kannel` runs bearerbox + smsbox with a fake
SMSC (``fakesmsc``, from the Debian package kannel-extras; ``make system`` installs it),
configured in a folder on four ports from ``base_port``. ``fakesmsc`` prints each message it
receives (``Got message N: <from to text ...>``) and sends, as a phone would, each line written
to its standard input (``"from to text words"``). :func:`smtp_server` runs an SMTP server
(aiosmtpd, in this process) that accepts every message and counts them by recipient.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx

from surmesure.errors import ConfigError

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
USER, PASSWORD = "crm", "kannel-test-password"
GOT = re.compile(r"Got message \d+: <(.*)>")

CONFIG = """\
group = core
admin-port = {admin}
admin-password = {password}
smsbox-port = {smsbox}
box-allow-ip = 127.0.0.1
log-file = "{folder}/bearerbox.log"
log-level = 2
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = {fake}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
log-file = "{folder}/smsbox.log"
log-level = 2
mo-recode = true

group = sendsms-user
username = {user}
password = {password}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{get_url}"
"""


@dataclass
class Phone:
    """The fake SMSC's side: what it received, and a way to send as a phone."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    sent: int = 0

    def read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            if "fakesmsc: sent message" in line:
                self.sent += 1
            found = GOT.search(line)
            if found:
                self.lines.append(found.group(1))

    def received(self) -> list[tuple[str, str, str, str]]:
        """``(from, to, kind, payload)`` of each message (a segment of a long text is one)."""
        out = []
        for line in self.lines:
            parts = line.split(" ")
            if parts[2] == "udh":  # udh UDH data|text PAYLOAD
                out.append((parts[0], parts[1], parts[4], " ".join(parts[5:])))
            else:
                out.append((parts[0], parts[1], parts[2], " ".join(parts[3:])))
        return out

    def payloads(self) -> list[bytes]:
        """The bytes of each message received (``text``: as printed; ``data``: decoded)."""
        out = []
        for _, _, kind, payload in self.received():
            if kind == "text":
                out.append(payload.encode())
            else:
                out.append(unquote_to_bytes(payload.replace("+", " ")))
        return out

    def wait_for(self, count: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def send(self, sender: str, to: str, text: str, kind: str = "text") -> None:
        """A message from a phone; ``kind`` ``ucs2`` takes the UTF-16 bytes url-encoded.
        Returns once fakesmsc has passed it on (it drops lines that arrive together)."""
        assert self.process.stdin is not None
        before = self.sent
        self.process.stdin.write(f"{sender} {to} {kind} {text}\n".encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + 10
        while self.sent == before and time.monotonic() < deadline:
            time.sleep(0.02)


@contextmanager
def kannel(folder: Path, base_port: int, get_url: str = "http://127.0.0.1:9/") -> Iterator[Phone]:
    """Kannel on ``base_port`` .. ``base_port + 3`` (admin, smsbox, fake SMSC, sendsms)."""
    admin, smsbox, fake, sendsms = range(base_port, base_port + 4)
    missing = [p for p in (BEARERBOX, SMSBOX, FAKESMSC) if not Path(p).exists()]
    if missing:
        raise ConfigError(
            f"Kannel is not installed here ({missing[0]} is missing).",
            field="sms",
            hint="run `make system` (Debian packages kannel and kannel-extras)",
        )
    conf = folder / "kannel.conf"
    conf.write_text(
        CONFIG.format(
            admin=admin,
            smsbox=smsbox,
            fake=fake,
            sendsms=sendsms,
            folder=folder,
            user=USER,
            password=PASSWORD,
            get_url=get_url,
        )
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    boxes = [subprocess.Popen([BEARERBOX, str(conf)], **quiet)]  # type: ignore[call-overload]
    phone: Phone | None = None
    try:
        _wait(f"http://127.0.0.1:{admin}/status.txt?password={PASSWORD}", "bearerbox")
        boxes.append(subprocess.Popen([SMSBOX, str(conf)], **quiet))  # type: ignore[call-overload]
        process = subprocess.Popen(
            ["stdbuf", "-oL", FAKESMSC, "-H", "127.0.0.1", "-r", str(fake), "-m", "100000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        boxes.append(process)
        phone = Phone(process)
        threading.Thread(target=phone.read, daemon=True).start()
        status = f"http://127.0.0.1:{admin}/status.txt?password={PASSWORD}"
        _wait(status, "online")  # the fake SMSC is connected
        _wait(status, "on-line")  # and smsbox too
        _wait(f"http://127.0.0.1:{sendsms}/", "")
        yield phone
    finally:
        for box in reversed(boxes):
            box.terminate()
        for box in boxes:
            try:
                box.wait(timeout=10)
            except subprocess.TimeoutExpired:
                box.kill()
                box.wait()


def sendsms_url(base_port: int) -> str:
    return f"http://127.0.0.1:{base_port + 3}/cgi-bin/sendsms"


def _wait(url: str, needle: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=1)
            if needle in answer.text:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Kannel did not answer {url!r} with {needle!r}")


@dataclass
class Mailbox:
    """What the local SMTP server accepted: one entry per message, its recipients (and, in
    ``contents``, the message as it arrived)."""

    received: list[list[str]] = field(default_factory=list)
    contents: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.received.append([str(r) for r in envelope.rcpt_tos])
        self.contents.append(bytes(envelope.original_content or envelope.content or b""))
        return "250 Message accepted"


@contextmanager
def smtp_server(port: int) -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1:``port`` in this process, accepting every message."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:  # a development dependency: `make install` brings it
        raise ConfigError(
            "The local SMTP server needs aiosmtpd.",
            field="email",
            hint="run `make install` (or pip install aiosmtpd)",
        ) from None
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
