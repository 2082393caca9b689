"""Problem codes (GUIDE §3) and the value that carries one through the pure stages."""

from __future__ import annotations

from dataclasses import dataclass

# The contract's codes; keep them, add more below.
SUM_MISMATCH = "sum_mismatch"
CHANNEL_TYPO = "channel_typo"
NOT_CONSUMPTION = "not_consumption"
ENCRYPTED = "encrypted"
CORRUPT = "corrupt"
EMPTY_FILE = "empty_file"
UNSAFE_XML = "unsafe_xml"
ARCHIVE_BOMB = "archive_bomb"
UNSUPPORTED_FORMAT = "unsupported_format"
PATH_TRAVERSAL_NAME = "path_traversal_name"
FORMULA_TEXT = "formula_text"
UNKNOWN_SENDER = "unknown_sender"
WRONG_DATE_HEADER = "wrong_date_header"
# Added by mailbot.
UNDECODABLE_HEADER = "undecodable_header"  # a header could not be decoded cleanly; shown with replacements
NO_RECEIVED_TIME = "no_received_time"  # an ingested file had no Received header; the Date header was used
OVERSIZED = "oversized"  # a message or attachment above the configured size cap
MALFORMED_MESSAGE = "malformed_message"  # the MIME structure is broken; what could be read was kept
AMBIGUOUS_UNIT = "ambiguous_unit"  # the content names several units and none could be chosen
REJECTED_SENDER = "rejected_sender"  # staff said this address does not belong to the unit it named
UNRECOGNISED_TABLE = "unrecognised_table"  # a table that is none of the annexes; reported, never guessed
NO_TABLE = "no_table"  # a readable file that holds no table at all (a letter, a blank sheet)
BAD_VALUE = "bad_value"  # a cell that should hold an amount, a count or a date and does not
UNMAPPED_VALUE = "unmapped_value"  # a 产品来源 or 采购方式 the staff's mapping does not know yet
UNMERGED_ITEMS = "unmerged_items"  # the same 产品来源 and 采购方式 listed twice in one unit's block
NO_END_DATE = "no_end_date"  # an annex 2 activity without an end date: on time cannot be decided
UNIT_MISMATCH = "unit_mismatch"  # a unit's table names another unit (another unit's file used as a template)
NO_OPEN_PERIOD = "no_open_period"  # a table the configured deadlines have no period for: counted nowhere, never guessed
# The archived copy of the message is missing or damaged (its SHA-256 does not match): the message failed, what
# it gave before is kept, and a person restores the file from a backup.
ARCHIVE_CORRUPT = "archive_corrupt"


@dataclass(frozen=True)
class Finding:
    """A problem found by a pure stage, before it is stored. `detail` is for people, in Chinese."""

    code: str
    detail: str
    attachment_position: int | None = None
