"""The ASGI application hypercorn serves in the integration tests.

Routes, shared with the nginx configuration in `servers.py` where nginx can:

- `GET /`: `hypercorn HTTP/<version>` (the protocol the request arrived over);
- `GET /static/<name>`: a file from `$UNITLS_TEST_ROOT/static`, streamed in 64 KiB chunks;
- `PUT /up/<name>`: the body is stored as `$UNITLS_TEST_ROOT/up/<name>`, answer 201;
- `POST /echo`: the body, echoed back as it arrives;
- `GET /truncated`: announces 1 MB, sends 100 kB, then breaks the connection;
- `GET /slow?seconds=<n>`: answers after `n` seconds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio

ROOT = Path(os.environ.get("UNITLS_TEST_ROOT", "."))
CHUNK = 64 * 1024


async def _body(receive: Any):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _respond(send: Any, status: int, body: bytes, ctype: bytes = b"text/plain") -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    method: str = scope["method"]
    if path == "/":
        await _respond(send, 200, f"hypercorn HTTP/{scope['http_version']}\n".encode())
    elif path.startswith("/static/") and method == "GET":
        file = ROOT / "static" / path.removeprefix("/static/")
        if not file.is_file():
            await _respond(send, 404, b"not found\n")
            return
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(file.stat().st_size).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with file.open("rb") as f:
            while chunk := f.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path.startswith("/up/") and method == "PUT":
        target = ROOT / "up" / path.removeprefix("/up/")
        digest = hashlib.sha256()
        with target.open("wb") as f:
            async for chunk in _body(receive):
                f.write(chunk)
                digest.update(chunk)
        await _respond(send, 201, digest.hexdigest().encode())
    elif path == "/echo" and method == "POST":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        async for chunk in _body(receive):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/truncated":
        headers = [(b"content-length", b"1000000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x" * 100_000, "more_body": True})
        raise RuntimeError("the test server breaks the connection mid-body on purpose")
    elif path == "/slow":
        seconds = float(parse_qs(scope["query_string"].decode()).get("seconds", ["1"])[0])
        await anyio.sleep(seconds)
        await _respond(send, 200, b"slow\n")
    else:
        await _respond(send, 404, b"not found\n")
