"""Kannel for the tests: the servers of :mod:`surmesure.deliver.local`, and a gate in front of
smsbox that can hold requests, as a stalling SMTP server holds messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from surmesure.deliver.local import PASSWORD, USER, Phone, kannel, sendsms_url

__all__ = ["PASSWORD", "USER", "Gate", "Phone", "gate", "kannel", "sendsms_url"]


class Gate:
    """Passes the first ``pass_first`` sendsms requests on to smsbox, then holds the next ones
    unanswered until ``release``; once ``dead`` (the client was killed meanwhile) it drops what
    it held without passing it on, as smsbox never sees a request whose sender went away."""

    def __init__(self, target: str, pass_first: int) -> None:
        self.target = target
        self.pass_first = pass_first
        self.passed = 0
        self.stalled = False
        self.dead = False
        self._released = threading.Event()
        self._lock = threading.Lock()

    def release(self) -> None:
        self._released.set()

    def handle(self, query: str) -> tuple[int, bytes]:
        with self._lock:
            hold = self.passed >= self.pass_first and not self._released.is_set()
            self.stalled = self.stalled or hold
        if hold:
            self._released.wait()
            if self.dead:
                return 503, b"gone"
        answer = httpx.get(f"{self.target}?{query}", timeout=10)
        with self._lock:
            self.passed += 1
        return answer.status_code, answer.content

    def steady(self, quiet: float = 0.5) -> bool:
        """Whether no request went through for ``quiet`` seconds."""
        before = self.passed
        time.sleep(quiet)
        return self.passed == before


@contextmanager
def gate(port: int, target: str, pass_first: int) -> Iterator[Gate]:
    """A :class:`Gate` to ``target`` listening on 127.0.0.1:``port`` (path ``/cgi-bin/sendsms``)."""
    found = Gate(target, pass_first)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = found.handle(self.path.partition("?")[2])
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client was killed

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.release()
        server.shutdown()
        server.server_close()
