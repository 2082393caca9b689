"""Big attachments bypass the stdlib parser's line handling but come out byte-identical."""

from __future__ import annotations

import base64
import hashlib
import os
import quopri

import pytest

from mailbot.message.blobs import MIN_LINES, lift
from mailbot.message.split import parse_message

from mailgen import make_message


def test_it_decodes_big_attachments_exactly_as_sent() -> None:
    first, second = os.urandom(600_000), os.urandom(300_000)
    raw = make_message(attachments=[("a.xlsx", first), ("b.xlsx", second)])
    slim, blobs = lift(raw)
    assert len(blobs.spans) == 2 and len(slim) < 20_000
    parsed = parse_message(raw)
    assert [p.data for p in parsed.attachments] == [first, second]
    assert parsed.attachments[0].sha256 == hashlib.sha256(first).hexdigest()
    assert parsed.findings == ()


def test_it_lifts_a_workbook_sized_attachment_and_leaves_a_tiny_one_to_the_ordinary_parser() -> None:
    workbook, tiny = os.urandom(6_000), os.urandom(400)
    raw = make_message(attachments=[("a.xlsx", workbook), ("b.txt", tiny)])
    slim, blobs = lift(raw)
    assert len(blobs.spans) == 1 and len(slim) < len(raw) - 7_000
    assert [p.data for p in parse_message(raw).attachments] == [workbook, tiny]
    small = make_message(attachments=[("b.txt", tiny)])
    assert lift(small)[0] is small


def test_it_decodes_quoted_printable_text_that_looks_like_base64() -> None:
    text = "附件是我单位的统计表，请查收。" * 40
    encoded = quopri.encodestring(text.encode("utf-8")).replace(b"\n", b"\r\n") + b"\r\n"
    raw = (
        b"From: jiaxian@example.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded
    )
    assert lift(raw)[1].spans  # every line is letters, digits and "=": lifted like base64
    assert parse_message(raw).text_body.strip() == text


def test_it_keeps_a_plain_text_body_that_merely_looks_like_base64() -> None:
    lines = [base64.b64encode(os.urandom(45)).decode() for _ in range(MIN_LINES + 10)]
    body = "\r\n".join(lines) + "\r\n"
    raw = (
        b"From: jiaxian@example.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + body.encode()
    )
    parsed = parse_message(raw)
    assert parsed.text_body.split() == lines


def test_it_reports_an_oversized_big_attachment_without_decoding_it() -> None:
    raw = make_message(attachments=[("huge.xlsx", os.urandom(700_000))])
    parsed = parse_message(raw, max_attachment_bytes=500_000)
    [part] = parsed.attachments
    assert part.data == b"" and 650_000 < part.byte_size < 760_000
    assert [f.code for f in parsed.findings] == ["oversized"]


def test_it_restores_a_lifted_run_that_shares_its_part_with_other_lines() -> None:
    lines = [base64.b64encode(os.urandom(57)).decode() for _ in range(MIN_LINES + 5)]
    body = "\r\n".join(["#", *lines]) + "\r\n"  # a stray first line keeps the token from being the whole payload
    raw = (
        b"From: jiaxian@example.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + body.encode()
    )
    parsed = parse_message(raw)
    assert parsed.text_body.split() == ["#", *lines]


@pytest.mark.parametrize("size", [6_000, 6_001, 6_002])  # base64 padding: none, "==", "="
def test_a_lifted_attachment_exactly_at_the_limit_is_kept_and_one_byte_over_is_not(size: int) -> None:
    data = os.urandom(size)
    raw = make_message(attachments=[("a.xlsx", data)])
    assert lift(raw)[1].spans
    assert parse_message(raw, max_attachment_bytes=size).attachments[0].data == data
    over = parse_message(raw, max_attachment_bytes=size - 1)
    assert over.attachments[0].data == b"" and [f.code for f in over.findings] == ["oversized"]
