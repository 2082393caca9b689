"""Big attachments bypass the stdlib parser's line handling but come out byte-identical."""

from __future__ import annotations

import base64
import hashlib
import os

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


def test_it_leaves_small_messages_to_the_ordinary_parser() -> None:
    raw = make_message(attachments=[("a.xlsx", os.urandom(20_000))])
    slim, blobs = lift(raw)
    assert slim is raw and not blobs.spans


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
