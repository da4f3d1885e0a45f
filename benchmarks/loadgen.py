"""A lean HTTP/1.1 load generator's two parts, shared by the benchmarks: requests prepared as
bytes once, and answers read with asyncio streams on kept-alive connections, so that a figure
measures the server rather than the client."""

from __future__ import annotations

import asyncio
import base64


def request_bytes(
    port: int, method: str, path: str, body: bytes | None, write_key: str = "bench-key"
) -> bytes:
    """A whole request (the write key as HTTP Basic user), ready to write on a connection."""
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bool, bytes, bytes]:
    """Send one request and read its whole answer: whether it was a 200, the status line
    and the body."""
    writer.write(request)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    answer = await reader.readexactly(length)
    return b" 200 " in status, status, answer
