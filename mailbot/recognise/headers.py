"""Header cells → canonical fields (GUIDE §3), and the annex a set of fields makes. Pure.

Units retype the templates, so one column is spelled many ways: "金额\\n(单位：元)", "金额（单位:万元）",
"投入资金 (元)". A header is compared in a normal form — NFKC, no whitespace, one kind of bracket — with
its unit part taken off; the unit part sets the column's scale. The spellings are data: add new ones to
SPELLINGS, not code.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

# Canonical field → the header spellings seen or expected for it (compared after normalise_header).
SPELLINGS: Mapping[str, tuple[str, ...]] = {
    "seq": ("序号", "编号", "序", "序列号"),
    "unit": ("单位名称", "单位", "填报单位", "工会名称", "报送单位", "工会"),
    "product": ("产品名称", "产品", "商品名称", "商品", "品名", "推荐产品", "农产品名称", "农副产品名称", "产品品名"),
    "source": ("产品来源", "来源", "采购来源", "购买渠道", "采购渠道", "来源渠道", "产品渠道"),
    "channel": ("采购方式", "方式", "购买方式", "采购形式", "购买形式", "消费方式"),
    "amount_yuan": ("金额", "采购金额", "消费金额", "购买金额", "成交金额", "采购额", "消费额"),
    "total_yuan": ("合计", "小计", "合计金额", "金额合计", "总金额", "总计"),
    "purchased_on": ("采购时间", "购买时间", "日期", "采购日期", "购买日期", "时间", "消费时间"),
    "quantity_tonnes": ("数量", "重量", "采购数量", "购买数量"),
    "recommender": ("推荐人", "推荐人姓名", "推荐单位", "推荐者"),
    "phone": ("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "电话号码"),
    "remark": ("备注", "说明"),
    "activity": ("活动名称", "活动", "活动主题", "活动项目", "专项活动名称"),
    "mode": ("活动开展方式", "开展方式", "活动方式", "活动形式", "开展形式"),
    "platform": ("组织活动平台", "活动平台", "平台", "线上平台", "组织平台"),
    "partners": ("联合单位", "联合组织单位", "合作单位", "协办单位"),
    "participants": ("参与人次", "参与人数", "参加人次", "参加人数", "参与职工人次"),
    "invested_yuan": ("投入资金", "投入金额", "投入资金金额", "投入经费", "资金投入"),
    "consumption_yuan": ("拉动消费金额", "拉动消费", "带动消费金额", "带动消费", "拉动消费额"),
    "ended_on": ("结束时间", "结束日期", "活动时间", "活动日期", "活动结束时间", "活动结束日期"),
}

WAN = Decimal(10000)
_MAX_HEADER_CHARS = 40  # a longer cell is a sentence, not a column header
_CACHED_CHARS = 120  # longer texts are neither headers nor worth caching (even with spaces and line breaks)
# After NFKC (which already folds （）：［］), the other bracket kinds units type.
_BRACKETS = str.maketrans({"【": "(", "】": ")", "[": "(", "]": ")", "〔": "(", "〕": ")", "{": "(", "}": ")"})
_MARKS = re.compile(r"[*※★☆#]")  # "*单位名称": a required-field mark, not part of the name
_GROUP = re.compile(r"\(([^()]*)\)")
_UNIT_WORD = re.compile(r"万元|千元|元|吨|公斤|千克|kg|斤|人次|人")
_BARE_UNIT = re.compile(r"(?:/|:|单位:?)?(万元|元|吨|公斤|千克|kg)$")
_SCALE_NOTE = re.compile(r"单位:?(万元|元)|\((万元|元)\)$")


@dataclass(frozen=True)
class HeaderCell:
    field: str | None  # canonical field, None when the header is not one we know
    unit: str  # the unit part as written after normalising ("万元", "单位:吨"), "" when none


def normalise_header(text: str) -> str:
    """NFKC, no whitespace or line breaks, one kind of bracket, no required-field marks."""
    return _normalised(text) if len(text) <= _CACHED_CHARS else _normalise(text)


def _normalise(text: str) -> str:
    compact = "".join(unicodedata.normalize("NFKC", text).split())
    return _MARKS.sub("", compact.translate(_BRACKETS))


# Every row is tried as a header and most cells repeat ("农户", "线下"): caching short texts halves the time.
_normalised = functools.lru_cache(maxsize=4096)(_normalise)


def _inverted(spellings: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {normalise_header(spelling): field for field, names in spellings.items() for spelling in names}


SYNONYMS: Mapping[str, str] = _inverted(SPELLINGS)


def read_header(text: str) -> HeaderCell:
    """The field a header cell names, and its unit part: "金额(单位：万元)" → amount_yuan, "单位:万元"."""
    return _read_header(text) if len(text) <= _CACHED_CHARS else HeaderCell(None, "")


@functools.lru_cache(maxsize=4096)
def _read_header(text: str) -> HeaderCell:
    name = normalise_header(text)
    if not name or len(name) > _MAX_HEADER_CHARS:
        return HeaderCell(None, "")
    unit = next((group for group in _GROUP.findall(name) if _UNIT_WORD.search(group)), "")
    bare = _GROUP.sub("", name)  # "产品来源(832平台、农户等)" names 产品来源 too
    if bare in SYNONYMS:
        return HeaderCell(SYNONYMS[bare], unit)
    trailing = _BARE_UNIT.search(bare)  # "金额万元", "金额/元"
    if trailing and bare[: trailing.start()] in SYNONYMS:
        return HeaderCell(SYNONYMS[bare[: trailing.start()]], unit or trailing.group(1))
    return HeaderCell(None, unit)


def money_scale(unit: str) -> Decimal | None:
    """Yuan per written unit, from a header's unit part; None when it names no money unit."""
    if "万元" in unit or unit == "万":
        return WAN
    if "千元" in unit:
        return Decimal(1000)
    return Decimal(1) if "元" in unit else None


def tonnes_scale(unit: str) -> Decimal | None:
    """Tonnes per written unit, from a header's unit part; None when it names no weight."""
    if "公斤" in unit or "千克" in unit or "kg" in unit.lower():
        return Decimal("0.001")
    if "斤" in unit:
        return Decimal("0.0005")
    return Decimal(1) if "吨" in unit or unit.lower() == "t" else None


def scale_note(text: str) -> Decimal | None:
    """The money scale a title or note states for the whole table ("单位：万元", "金额单位:元"), if any."""
    match = _SCALE_NOTE.search(normalise_header(text))
    if match is None:
        return None
    return WAN if (match.group(1) or match.group(2)) == "万元" else Decimal(1)


def annex_of(fields: Iterable[str]) -> str | None:
    """Which table a header is, from the fields it names; None when it is none of them (never guessed)."""
    present = set(fields)
    if {"product", "recommender"} <= present:
        return "1"
    if "activity" in present and present & {"mode", "participants", "consumption_yuan"}:
        return "2"
    if {"source", "channel", "amount_yuan"} <= present and present & {"unit", "product"}:
        return "3"  # the 2020 layout's 采购时间 and 数量 are extra columns of the same statistic
    return None
