"""Files the console hands out: always as a download under a safe name, never shown in the browser.

A file a unit sent can be anything (HTML, SVG, a script named .xlsx): served inline it would run with the
console's session. So every download is `attachment`, `nosniff`, and a unit's file goes out as
application/octet-stream whatever it claims to be.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from mailbot.message.names import safe_name

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OCTET = "application/octet-stream"


def disposition(name: str) -> str:
    """`attachment` with the name twice: an ASCII fallback for old clients and the real name per RFC 5987
    (`filename*=UTF-8''…`), which every current browser uses. Both come from `safe_name`, so neither can
    carry a path, a quote or a line break into the header."""
    safe = safe_name(name)
    fallback = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in safe)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(safe, safe='')}"


def download(data: bytes, name: str, media_type: str = OCTET) -> Response:
    headers = {
        "Content-Disposition": disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return Response(data, media_type=media_type, headers=headers)
