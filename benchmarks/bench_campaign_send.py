"""``campaign send`` end to end for ``--people`` people (default 20,000) in DuckDB: plan, record,
render (an MJML body and a text part with a personal field) and hand over to a local SMTP server
running in its own process: aiosmtpd (the default, counting what it accepts; ``--server
aiosmtpd-lockstep``: without PIPELINING), or ``--server sink``, a minimal asyncio server that
only reads, counts and answers, so the figure shows surmesure's own ceiling rather than
aiosmtpd's. Beside it, in the same run, a plain ``smtplib``
loop handing the same number of ready-made messages to the same server over one connection: what
the protocol alone costs on this machine.

People are written straight into the store with their e-mail sealed at rest (as imports
store them) and a city trait.

    python benchmarks/bench_campaign_send.py [--people N] [--parallel 4] [--server sink] [--json]

Target (issue 13): at least 1,000 messages/s end to end.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from rich.console import Console

from surmesure.deliver import documents, service
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.protect import blind
from surmesure.store import Store, open_store, schema

T0 = datetime(2026, 3, 2, 10)
PORT = int(os.environ.get("BENCH_SMTP_PORT", "18448"))
"""The local SMTP server's port (``BENCH_SMTP_PORT``)."""
TARGET = 1_000.0
SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] * PIPELINING + responses[-1:]
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
for line in sys.stdin:
    print(Count.n, flush=True)
"""
SINK = r"""
import asyncio, sys, threading
count = [0]
class S(asyncio.Protocol):
    def connection_made(self, t):
        self.t, self.buf, self.data = t, b"", False
        t.write(b"220 sink ESMTP\r\n")
    def data_received(self, chunk):
        self.buf += chunk
        while True:
            if self.data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buf, self.data = self.buf[end + 5:], False
                count[0] += 1
                self.t.write(b"250 OK\r\n")
                continue
            end = self.buf.find(b"\r\n")
            if end < 0:
                return
            line, self.buf = self.buf[:end].upper(), self.buf[end + 2:]
            if line.startswith(b"DATA"):
                self.data = True
                self.t.write(b"354 go\r\n")
            elif line.startswith(b"QUIT"):
                self.t.write(b"221 bye\r\n"); self.t.close(); return
            elif line.startswith(b"EHLO"):
                self.t.write(b"250-sink\r\n250 8BITMIME\r\n")
            else:
                self.t.write(b"250 OK\r\n")
def answer():
    for line in sys.stdin:
        print(count[0], flush=True)
async def main():
    server = await asyncio.get_running_loop().create_server(S, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    threading.Thread(target=answer, daemon=True).start()
    await server.serve_forever()
asyncio.run(main())
"""
SERVERS = {
    "aiosmtpd": SERVER.replace("class Count", "PIPELINING = 1\nclass Count"),
    "aiosmtpd-lockstep": SERVER.replace("class Count", "PIPELINING = 0\nclass Count"),
    "sink": SINK.replace("250-sink\\r\\n", "250-sink\\r\\n250-PIPELINING\\r\\n"),
}
"""The local SMTP servers: each offers PIPELINING (RFC 2920), as Postfix, Exim and providers'
relays do (aiosmtpd handles pipelined commands but does not say so), except
``aiosmtpd-lockstep``, where a client waits for the reply to each command."""
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text>Bonjour, les nouveautés de {{ person.city }} arrivent.</mj-text>"
    "<mj-button href='https://shop.example/spring'>Voir</mj-button>"
    "</mj-column></mj-section></mj-body></mjml>"
)
DOCUMENT: dict[str, Any] = {
    "name": "bench",
    "audience": "everyone",
    "channels": {
        "email": {
            "subject": "Le printemps à {{ person.city }}",
            "text": "Bonjour, les nouveautés de {{ person.city }} arrivent.",
            "html": MJML,
            "fields": {"city": {"trait": "city", "fallback": "votre ville"}},
        }
    },
}


def _fill(store: Store, n: int) -> None:
    ids = list(range(1, n + 1))
    times = pa.array([T0] * n, pa.timestamp("us"))
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.people,
            pa.table({"person_id": ids, "merged_into": pa.nulls(n, pa.int64()),
                      "created_at": times, "updated_at": times}),
        )  # fmt: skip
        plain = pa.table(
            {
                "kind": ["email"] * n,
                "value": [f"person{i}@example.org" for i in ids],
                "person_id": ids,
                "node_id": ids,
                "source": ["crm"] * n,
                "first_seen_at": times,
            }
        )
        store.bulk_insert(
            conn, schema.identifiers, blind.at_rest(store, conn, schema.identifiers, plain, T0)
        )
        store.bulk_insert(
            conn,
            schema.traits,
            pa.table({"record_key": [f"r{i}" for i in ids], "name": ["city"] * n,
                      "value": ['"Lyon"'] * n, "source": ["crm"] * n, "observed_at": times,
                      "reliability": [0.9] * n, "person_id": ids, "node_id": ids}),
        )  # fmt: skip


class TreeCpu:
    """The processor time of this process's descendants (the send's worker processes and
    their server), sampled from /proc while they live, leaving out ``skip`` (the SMTP
    server's process): a worker's last sample is its time."""

    def __init__(self, skip: int) -> None:
        self.skip, self.done = skip, threading.Event()
        self.seen: dict[int, int] = {}
        #: the processor time the sampling itself took (in this process, to leave out of it)
        self.own = 0.0
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeCpu:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def seconds(self) -> float:
        return sum(self.seen.values()) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        start = time.thread_time()
        try:
            self._read()
        finally:
            self.own = time.thread_time() - start

    def _read(self) -> None:
        while not self.done.wait(0.1):
            parents: dict[int, int] = {}
            ticks: dict[int, int] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry.name)] = int(fields[1])
                ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
            mine = {os.getpid()}
            for _ in range(3):  # children, grandchildren (the workers of the fork server)
                mine |= {pid for pid, parent in parents.items() if parent in mine}
            for pid in mine - {os.getpid(), self.skip}:
                self.seen[pid] = max(self.seen.get(pid, 0), ticks.get(pid, 0))


def _smtplib_loop(n: int) -> float:
    data = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\n\r\nHello\r\n"
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", PORT) as smtp:
        for _ in range(n):
            smtp.sendmail("a@example.com", ["b@example.org"], data)
    return n / (time.perf_counter() - start)


def run(
    people: int,
    parallel: int,
    console: Console,
    kind: str = "aiosmtpd",
    *,
    document: dict[str, Any] = DOCUMENT,
    setup: Callable[[Store, int, Path], None] | None = None,
    track: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Send ``document`` (a campaign named ``bench``) to ``people`` people; ``setup(store,
    people, folder)`` adds what it needs to the store, after the people. ``workers``: the
    processes that render and hand over (``campaign send --workers``)."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVERS[kind], str(PORT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    server.stdout.readline()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
            try:
                start = time.perf_counter()
                _fill(store, people)
                if setup is not None:
                    setup(store, people, Path(tmp))
                console.print(f"  people: {time.perf_counter() - start:.1f} s", style="dim")
                documents.save(store, documents.parse(document), T0)
                settings = EmailSettings(
                    port=PORT, sender="news@example.com", pool=parallel, track=track
                )
                channel = EmailChannel(settings, UnsubscribeLinks("https://shop.example", "s" * 32))
                url = (f"smtp://127.0.0.1:{PORT}?sender=news@example.com&pool={parallel}"
                       f"&track={int(track)}")  # fmt: skip
                start, cpu = time.perf_counter(), time.process_time()
                with TreeCpu(skip=server.pid) as helpers:
                    report = service.send(
                        store, "bench", T0, channels={"email": channel}, folder=Path(tmp),
                        parallel=parallel, batch=1000, workers=workers, urls={"email": url},
                    )  # fmt: skip
                elapsed = time.perf_counter() - start
                # the sampling of the workers' time is the benchmark's, not the send's
                cpu = time.process_time() - cpu - helpers.own
                channel.close()
            finally:
                store.dispose()
        loop_rate = _smtplib_loop(min(people, 5_000))
        server.stdin.write("count\n")
        server.stdin.flush()
        received = int(server.stdout.readline())
    finally:
        server.terminate()
        server.wait()
    assert report.sent is not None
    rate = people / elapsed
    return {
        "people": people,
        "server": kind,
        "workers": workers,
        "sent": report.sent.counts.get("sent", 0),
        "outcomes": report.sent.counts,
        "received": received - min(people, 5_000),
        "seconds": round(elapsed, 2),
        "messages_per_s": round(rate),
        "smtplib_loop_per_s": round(loop_rate),
        "target_per_s": TARGET,
        "met": rate >= TARGET,
        # the processor time this process spent a message (all its threads; not the server's,
        # nor the workers'): what the figure would be on a core of its own, whatever else the
        # machine runs
        "cpu_ms_per_message": round(cpu / people * 1000, 3),
        # and with the worker processes' (``--workers``), the SMTP server's still left out
        "all_cpu_ms_per_message": round((cpu + helpers.seconds()) / people * 1000, 3),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--server", choices=sorted(SERVERS), default="aiosmtpd")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    out = run(args.people, args.parallel, console, args.server)
    if args.json:
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    console.print(
        f"campaign send ({out['server']}): {out['sent']:,} messages in {out['seconds']} s, "
        f"{out['messages_per_s']:,}/s (server received {out['received']:,}); "
        f"plain smtplib loop: {out['smtplib_loop_per_s']:,}/s; target {TARGET:,.0f}/s: "
        f"{'met' if out['met'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
