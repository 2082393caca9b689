"""Attribute stage: which registered unit sent a message. Pure.

A registered From address decides. Otherwise the unit is read from the content — subject, then attachment
names, then body (signature included) — and staff are asked to confirm the new address.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailbot.message.decode import html_to_text
from mailbot.message.model import ParsedMessage
from mailbot.problems import AMBIGUOUS_UNIT, REJECTED_SENDER, UNKNOWN_SENDER, Finding
from mailbot.registry import Registry, RegistryUnit

# Traditional and variant forms seen in Pingdingshan unit names, mapped to the simplified forms staff use.
_VARIANTS = dict(
    zip(
        "郟寶豐葉魯華衛衞東區縣門龍鋼陽礦熱電發機紡財貿設會總團業協聯輕義環運禮製廠屬幹資糧農氣產醫療",
        "郏宝丰叶鲁华卫卫东区县门龙钢阳矿热电发机纺财贸设会总团业协联轻义环运礼制厂属干资粮农气产医疗",
        strict=True,
    )
)
# One regex finds what to fold; str.translate looks up every character in Python and is ~50x slower on a body.
# Zero-width characters are pasted in from web pages and Word; they would split a name invisibly.
_VARIANTS.update(dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", ""))
_TO_FOLD = re.compile(f"[{''.join(_VARIANTS)}A-Z]")
# Longest first: 市总工会 minus 总工会 leaves one character, and then no short name is derived.
_SUFFIXES = ("工会联合会", "总工会", "工会")
MAX_SCANNED_CHARS = 200_000  # a body longer than this is a pasted table; unit names sit near the top or end


def normalise_name(text: str) -> str:
    """NFKC, no whitespace, simplified variants, lower-case ASCII: the form names are compared in."""
    compact = "".join(unicodedata.normalize("NFKC", text).split())  # split() knows U+3000 and is C-fast
    return _TO_FOLD.sub(lambda m: _VARIANTS.get(m.group(0), m.group(0).lower()), compact)


@dataclass(frozen=True)
class Attribution:
    unit: str | None
    sender_known: bool
    by: str  # "address", "subject", "filename", "body", or "" when no unit
    findings: tuple[Finding, ...] = ()


def derived_names(unit: RegistryUnit) -> tuple[str, ...]:
    """The names a unit is known by: canonical, aliases, and the canonical name minus its union suffix."""
    names = [unit.name, *unit.aliases]
    suffix = next((s for s in _SUFFIXES if unit.name.endswith(s)), "")
    short = unit.name[: len(unit.name) - len(suffix)]
    if suffix and len(short) >= 2:
        names.append(short)
    return tuple(dict.fromkeys(names))


class AliasIndex:
    """Every recognisable name, normalised, in one regex; built once per registry."""

    def __init__(self, registry: Registry) -> None:
        self._units: dict[str, frozenset[str]] = {}
        for unit in registry.units:
            for name in derived_names(unit):
                key = normalise_name(name)
                if key:
                    self._units[key] = self._units.get(key, frozenset()) | {unit.name}
        # Before the addressee names are blanked: in a 单位名称 cell "市总工会" is the unit of that name.
        self._exact = {key: next(iter(units)) for key, units in self._units.items() if len(units) == 1}
        # The addressee occupies its span but names nobody, so "报送市总工会" attributes to no one while
        # "舞钢市总工会" still beats the shorter "市总工会" inside it.
        for name in registry.addressee_names:
            if normalise_name(name):
                self._units[normalise_name(name)] = frozenset()
        # One regex, longest alternative first, inside a lookahead: at every position it reports the longest
        # name starting there, overlapping matches included, and the scan runs in C.
        keys = sorted(self._units, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, keys)) or "(?!)"
        self._pattern = re.compile(f"(?=({alternatives}))")

    def units_in(self, text: str) -> frozenset[str]:
        """Units named in the text; where names overlap, only the longest counts."""
        named: set[str] = set()
        reach = 0  # the furthest end of any earlier match: a match ending before it lies inside a longer one
        for match in self._pattern.finditer(normalise_name(text[:MAX_SCANNED_CHARS])):
            key = match.group(1)
            end = match.start() + len(key)
            if end > reach:
                named |= self._units[key]
            reach = max(reach, end)
        return frozenset(named)

    def unit_named(self, cell: str) -> str | None:
        """The unit a 单位名称 cell or a title names: the exact name or alias first, else the only unit in it."""
        exact = self._exact.get(normalise_name(cell))
        if exact is not None:
            return exact
        named = self.units_in(cell)
        return next(iter(named)) if len(named) == 1 else None


_INDEX_CACHE: dict[int, tuple[Registry, AliasIndex]] = {}


def alias_index(registry: Registry) -> AliasIndex:
    """The index for this registry object, cached: attribution runs for every message."""
    cached = _INDEX_CACHE.get(id(registry))
    if cached is not None and cached[0] is registry:
        return cached[1]
    if len(_INDEX_CACHE) >= 8:  # registries are rebuilt rarely; keep the cache from growing without end
        _INDEX_CACHE.clear()
    index = AliasIndex(registry)
    _INDEX_CACHE[id(registry)] = (registry, index)  # holding the registry keeps its id from being reused
    return index


def attribute(msg: ParsedMessage, registry: Registry) -> Attribution:
    """Which unit sent the message, how that was decided, and what staff should confirm."""
    unit = registry.unit_for_address(msg.from_address)
    if unit is not None:
        return Attribution(unit.name, sender_known=True, by="address")
    if msg.from_address and msg.from_address in registry.rejected_addresses:
        detail = f"发件地址 {msg.from_address} 已被工作人员标记为不属于其所称单位，未按邮件内容归属"
        return Attribution(None, sender_known=False, by="", findings=(Finding(REJECTED_SENDER, detail),))
    return _from_content(msg, alias_index(registry))


def _from_content(msg: ParsedMessage, index: AliasIndex) -> Attribution:
    candidates: set[str] = set()
    for by, text in _sources(msg):
        named = index.units_in(text)
        if len(named) == 1:
            (unit,) = named
            return Attribution(unit, sender_known=False, by=by, findings=(_unknown_sender(msg, unit),))
        candidates |= named
    if not candidates:
        return Attribution(None, sender_known=False, by="")
    listed = "、".join(sorted(candidates))
    detail = f"邮件内容提到多个单位（{listed}），无法确定发件单位，请工作人员确认"
    return Attribution(None, sender_known=False, by="", findings=(Finding(AMBIGUOUS_UNIT, detail),))


def _sources(msg: ParsedMessage) -> tuple[tuple[str, str], ...]:
    body = msg.text_body if msg.text_body.strip() else html_to_text(msg.html_body)
    # "|" rather than a newline: whitespace is dropped before matching and would join two names into one.
    filenames = "|".join(part.filename for part in msg.attachments)
    return (("subject", msg.subject), ("filename", filenames), ("body", body))


def _unknown_sender(msg: ParsedMessage, unit: str) -> Finding:
    address = msg.from_address or "（空）"
    return Finding(UNKNOWN_SENDER, f"发件地址 {address} 未登记，按邮件内容归属于 {unit}，请工作人员确认")
