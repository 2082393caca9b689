"""What the split stage produces from raw bytes: the parts of a message every later stage looks at."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailbot.problems import Finding


@dataclass(frozen=True)
class Part:
    """One attachment (or inline file). `filename` is decoded for display and never used as a path."""

    position: int
    filename: str
    content_type: str
    data: bytes  # empty when the part was over the size cap
    sha256: str  # "" when data was not kept
    size: int = -1  # the decoded size; -1 means len(data)

    @property
    def byte_size(self) -> int:
        return len(self.data) if self.size < 0 else self.size


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str  # without angle brackets; "" when absent
    from_address: str  # lower-case addr-spec; "" when absent or unparseable
    from_name: str
    to_addresses: tuple[str, ...]
    subject: str
    date_header: datetime | None  # the sender's claim, aware
    received_header_time: datetime | None  # from the topmost Received header, aware
    # Header names in lower case, values decoded to text; all occurrences kept in order.
    headers: tuple[tuple[str, str], ...]
    content_type: str  # of the whole message, e.g. multipart/report
    report_type: str  # the report-type parameter of a multipart/report, else ""
    text_body: str
    html_body: str
    attachments: tuple[Part, ...]
    findings: tuple[Finding, ...] = field(default=())

    def header(self, name: str) -> str:
        """The first value of a header, "" when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), "")
