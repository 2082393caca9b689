"""The Chinese words staff read for mailbot's codes: statuses, kinds of mail in and out, mail states. One mapping
each, used by the console, the digest and the terminal alike (plain data: importing it pulls in no web server)."""

from __future__ import annotations

from collections.abc import Mapping

from mailbot.report.facts import EXEMPT, LATE, MISSING, NIL_WORD, ON_TIME, VERDICT_WORDS
from mailbot.store.bounces import KIND_NAMES

NIL = "nil"  # the console's and the JSON's status of a unit that reported nothing to report
STATUSES = (ON_TIME, LATE, NIL, EXEMPT, MISSING)  # the order counts are shown in
STATUS_WORDS = {**VERDICT_WORDS, NIL: NIL_WORD}
KIND_WORDS = {
    "report": "报表",
    "nil_report": "无数据说明",
    "not_a_report": "非报表来信",
    "auto_or_bounce": "自动回复或退信",
    "unknown_sender": "发件人不明",
    "rejected_input": "拒收",
    "": "尚未处理",
}
ATTRIBUTED_WORDS = {
    "address": "发件地址已登记为该单位",
    "subject": "邮件标题中写有单位名称",
    "filename": "附件文件名中写有单位名称",
    "body": "邮件正文中写有单位名称",
    "": "未能确定单位",
}
VERSION_WORDS = {"current": "当前有效", "superseded": "已被更正", "duplicate": "重复发送"}
MAIL_WORDS = {
    "pending": "待发送",
    "sending": "发送中",
    "delivering": "发送中",
    "sent": "已发送",
    "failed": "发送失败",
    "cancelled": "已取消",
    "uncertain": "可能已发出，需人工确认",
    "bounced": "被退回",
}
MAIL_KINDS = {
    **KIND_NAMES,
    "alert": "告警",
    "annex2_nudge": "附件2提醒",
}


def word(words: Mapping[str, str], key: str) -> str:
    """The Chinese word for a status or kind; a value this page does not know yet shows as itself."""
    return words.get(key, key)
