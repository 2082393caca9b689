"""The staff's mapping of 产品来源 and 采购方式 spellings, typo suggestions, and cash gifts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.demo.seed2020 import SEED_2020
from mailbot.errors import ConfigError
from mailbot.normalise.mapping import EMPTY, KNOWN, TYPO, UNKNOWN, load_mapping

MAPPING = load_mapping()


def test_it_maps_spellings_to_canonical_values() -> None:
    assert MAPPING.source.map("扶贫832平台").value == "832平台"
    assert MAPPING.source.map(" “惠农帮”平台 ").value == "惠农帮平台"
    assert MAPPING.channel.map("线上线下").value == "线上线下结合"
    assert MAPPING.channel.map("线　下").status == KNOWN  # a full-width space


def test_it_suggests_the_near_spelling_for_a_typo() -> None:
    typo = MAPPING.source.map("扶贫836平台")
    assert (typo.status, typo.suggestion, typo.value, typo.raw) == (TYPO, "扶贫832平台", "832平台", "扶贫836平台")
    assert MAPPING.channel.map("线上线上").suggestion == "线上线下"


def test_it_keeps_unknown_spellings_as_written_and_never_guesses_short_ones() -> None:
    assert MAPPING.source.map("某某直销店").status == UNKNOWN
    assert MAPPING.channel.map("线中").status == UNKNOWN  # one edit from both 线上 and 线下
    assert MAPPING.channel.map("  ").status == EMPTY


def test_it_knows_every_spelling_of_the_2020_table_except_its_typos() -> None:
    statuses = {
        (row.source, MAPPING.source.map(row.source).status, MAPPING.channel.map(row.channel).status)
        for block in SEED_2020
        for row in block.rows
    }
    odd = {(source, s, c) for source, s, c in statuses if (s, c) != (KNOWN, KNOWN)}
    assert odd == {("扶贫836平台", TYPO, KNOWN), ("扶贫产品", KNOWN, TYPO)}  # 宝丰's 线上线上


def test_it_finds_cash_gifts() -> None:
    assert MAPPING.cash_word_in("春节 慰问金 发放") == "慰问金"
    assert MAPPING.cash_word_in("超市购物卡") == "购物卡"
    assert MAPPING.cash_word_in("小米、花生") is None


def test_it_reads_a_staff_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[source]\n"直采" = ["直接采购"]\n[channel]\n"线下" = []\n[not_consumption]\nwords = ["油卡"]\n')
    mapping = load_mapping(path)
    assert mapping.source.map("直接采购").value == "直采"
    assert mapping.cash_word_in("购物卡") is None and mapping.cash_word_in("加油卡") == "油卡"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[source]\n"A" = "B"\n', "expected a list"),
        ('[source]\n"A" = ["X"]\n"B" = ["X"]\n', "listed under both"),
        ("[not_consumption]\nwords = [1]\n", "expected words"),
        ("[source\n", "cannot read"),
    ],
)
def test_it_names_what_is_wrong_in_a_staff_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_mapping(path)
