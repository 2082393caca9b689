"""The shared top-level boundary: parsing with it gives exactly what parsing the mail as sent gives."""

from __future__ import annotations

import pytest

from mailbot.message.boundary import SHARED, restore, share_boundary
from mailbot.message.split import parse_message

from mailgen import annex3_xlsx, make_message

HEAD = b'From: a@example.cn\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary="BND-1"\r\n\r\n'
PART = b'--BND-1\r\nContent-Type: text/plain; charset="utf-8"\r\n\r\n%s\r\n'


def mail(text: bytes = b"hello", head: bytes = HEAD) -> bytes:
    return head + PART % text + b"--BND-1--\r\n"


def test_it_shares_a_plain_top_level_boundary_and_gives_the_header_its_own_back() -> None:
    shared, boundary = share_boundary(mail())
    assert boundary == "BND-1"
    assert b"BND-1" not in shared and shared.count(SHARED.encode()) == 3
    assert restore(f'multipart/mixed; boundary="{SHARED}"', boundary) == 'multipart/mixed; boundary="BND-1"'


@pytest.mark.parametrize(
    "raw",
    [
        mail(b"see --BND-1x and BND-1 in the text"),  # the boundary in a body, not on a delimiter line
        mail(SHARED.encode()),  # the token itself in the mail
        mail(head=HEAD.replace(b"Subject: s", b"Subject: BND-1")),  # the boundary elsewhere in the header block
        mail(head=HEAD.replace(b"Subject: s\r\n", b"Subject: s\r\nnot a header line\r\n")),
        mail(head=HEAD.replace(b"multipart/mixed;", b"text/plain;")),  # not a multipart: no delimiters at all
        mail(head=HEAD.replace(b'boundary="BND-1"', b"boundary=BND-1")),  # unquoted: left to the parser
        mail(head=HEAD.replace(b"Subject: s\r\n", b"Subject: s\r\nContent-type: text/plain\r\n")),  # two types
    ],
)
def test_it_leaves_any_other_mail_as_it_came(raw: bytes) -> None:
    assert share_boundary(raw) == (raw, None)


@pytest.mark.parametrize(
    "raw",
    [
        mail(),
        mail(b"--BND-1 \t"),  # a delimiter line with trailing blanks, inside the text
        make_message(attachments=[("附件3.xlsx", annex3_xlsx("1"))]),
        make_message(attachments=[("a.txt", b"--x\r\n"), ("b.xlsx", annex3_xlsx("2"))]),
    ],
)
def test_it_parses_exactly_as_the_mail_as_sent(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = parse_message(raw)
    monkeypatch.setattr("mailbot.message.split.share_boundary", lambda data: (data, None))
    assert shared == parse_message(raw)
