"""The Python floor: a bare WSGI app on granian that only reads the body, parses
the JSON and answers 202. Whatever Telemetron does costs on top of this.

    python -m granian --interface wsgi bench.floors.bare_wsgi:app
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

_ACCEPTED = b'{"status":"accepted"}'
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_ACCEPTED)))]
_BAD = b'{"error":"Invalid JSON"}'

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    try:
        json.loads(body)
    except ValueError:
        start_response(
            "400 Bad Request",
            [("Content-Type", "application/json"), ("Content-Length", str(len(_BAD)))],
        )
        return [_BAD]
    start_response("202 Accepted", _HEADERS)
    return [_ACCEPTED]
