"""产品来源 and 采购方式: spellings → canonical values, through a mapping staff edit (mailbot/data/mapping.toml).

Pure lookups on a loaded Mapping. A spelling the mapping does not know is kept as written and flagged; when it
is one character away from exactly one known spelling it is probably a typo (扶贫836平台 → 扶贫832平台,
线上线上 → 线上线下), and the suggestion is counted, flagged, so staff see it rather than a silent guess.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mailbot.errors import ConfigError

KNOWN, TYPO, UNKNOWN, EMPTY = "known", "typo", "unknown", "empty"
_IGNORED = re.compile(r"[\s\"'“”‘’「」『』《》<>]")
MIN_TYPO_LENGTH = 3  # "线中" is one character from both 线上 and 线下: short words are never guessed


def spelling_key(text: str) -> str:
    """The form spellings are compared in: NFKC, no spaces or quotes, lower-case ASCII."""
    return _IGNORED.sub("", unicodedata.normalize("NFKC", text)).lower()


@dataclass(frozen=True)
class Mapped:
    raw: str  # as the unit wrote it
    value: str  # the canonical value; the raw text when unknown
    status: str  # known | typo | unknown | empty
    suggestion: str = ""  # for a typo: the known spelling it is closest to


@dataclass(frozen=True)
class Vocabulary:
    """One mapped column: spelling key → (spelling as staff wrote it, canonical value)."""

    spellings: dict[str, tuple[str, str]] = field(default_factory=dict)

    def map(self, raw: str) -> Mapped:
        key = spelling_key(raw)
        if not key:
            return Mapped(raw, "", EMPTY)
        if key in self.spellings:
            return Mapped(raw, self.spellings[key][1], KNOWN)
        near = [k for k in self.spellings if len(k) >= MIN_TYPO_LENGTH and _one_edit_apart(key, k)]
        if len(near) == 1:
            spelling, canonical = self.spellings[near[0]]
            return Mapped(raw, canonical, TYPO, suggestion=spelling)
        return Mapped(raw, raw.strip(), UNKNOWN)


@dataclass(frozen=True)
class Mapping:
    source: Vocabulary
    channel: Vocabulary
    cash_words: tuple[str, ...]

    def cash_word_in(self, text: str) -> str | None:
        """The first cash-gift word (慰问金, 购物卡 …) in the text: such items are not consumption."""
        key = spelling_key(text)
        return next((word for word in self.cash_words if spelling_key(word) in key), None)


def _one_edit_apart(a: str, b: str) -> bool:
    """Exactly one substitution, insertion or deletion turns a into b."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


# ---------------------------------------------------------------------------------------------------------
# Loading (the staff's file, or the shipped one)


def load_mapping(path: Path | None = None) -> Mapping:
    """Read a mapping file; None reads the one shipped with mailbot. Errors name the file and key."""
    where = str(path) if path else "mailbot/data/mapping.toml"
    try:
        text = path.read_text(encoding="utf-8") if path else _shipped()
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"tables.mapping_file: cannot read {where}: {exc}") from exc
    return Mapping(
        source=_vocabulary(raw.get("source", {}), f"{where}: [source]"),
        channel=_vocabulary(raw.get("channel", {}), f"{where}: [channel]"),
        cash_words=_words(raw.get("not_consumption", {}), f"{where}: [not_consumption]"),
    )


def _shipped() -> str:
    return resources.files("mailbot.data").joinpath("mapping.toml").read_text(encoding="utf-8")


def _vocabulary(table: Any, where: str) -> Vocabulary:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of 规范名称 = [写法, …]")
    spellings: dict[str, tuple[str, str]] = {}
    for canonical, others in table.items():
        if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
            raise ConfigError(f"{where} {canonical!r}: expected a list of spellings")
        for spelling in (canonical, *others):
            owner = spellings.setdefault(spelling_key(spelling), (spelling, canonical))[1]
            if owner != canonical:
                raise ConfigError(f"{where} {spelling!r}: listed under both {owner!r} and {canonical!r}")
    return Vocabulary(spellings)


def _words(table: Any, where: str) -> tuple[str, ...]:
    words = table.get("words", []) if isinstance(table, dict) else None
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise ConfigError(f'{where}: expected words = ["慰问金", …]')
    return tuple(words)
