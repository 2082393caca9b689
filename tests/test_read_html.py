"""read_html_tables: tables pasted into mail bodies, merged cells expanded, layout tables and hostile markup."""

from __future__ import annotations

import time

import pytest

from mailbot.read import html as html_reader
from mailbot.read.html import read_html_tables
from mailbot.read.model import CellRange
from mailbot.read.sniff import has_data_table

# Seed 003's consolidated table: one block per unit, 单位名称 and 合计 written once, a grand total row.
CONSOLIDATED = """
<table border="1">
<tr><th>单位名称</th><th>产品名称</th><th>产品来源</th><th>采购方式</th><th>金额（万元）</th><th>合计（万元）</th></tr>
<tr><td rowspan="3">轻纺工会</td><td></td><td>扶贫企业</td><td>线下</td><td>48</td><td rowspan="3">138.35</td></tr>
<tr><td></td><td>农户</td><td>线下</td><td>82.56</td></tr>
<tr><td></td><td>内部平台</td><td>线上</td><td>4.694</td></tr>
<tr><td rowspan="2">平高集团</td><td></td><td>“惠农帮”平台</td><td>线上</td><td>115.31</td>
<td rowspan="2">140.4</td></tr>
<tr><td></td><td>农户</td><td>线下</td><td>25.09</td></tr>
<tr><td colspan="5">合计</td><td>3341.57</td></tr>
</table>
"""

SIGNATURE = """
<table><tr><td><img src="logo.png"></td><td>王维<br>平顶山市总工会</td></tr>
<tr><td colspan="2">电话：0375-3799638</td></tr></table>
"""

ROW_ABC = "<tr><td>a</td><td>b</td><td>c</td></tr>"
ROW_123 = "<tr><td>1</td><td>2</td><td>3</td></tr>"
SMALL_DATA = (
    "<table><tr><td>产品</td><td>来源</td><td>金额</td></tr><tr><td>小米</td><td>农户</td><td>5</td></tr></table>"
)

# What 163 webmail and Outlook receive when a range is copied from Excel.
EXCEL_PASTE = """<html xmlns:o="urn:schemas-microsoft-com:office:office"
 xmlns:x="urn:schemas-microsoft-com:office:excel">
<head><meta charset="utf-8"><style><!--
td {mso-style-parent:style0; mso-number-format:General; border:none;}
.xl65 {mso-number-format:"0\\.00";}
--></style><!--[if gte mso 9]><xml><x:ExcelWorkbook><x:ExcelWorksheets><x:ExcelWorksheet>
<x:Name>Sheet1</x:Name></x:ExcelWorksheet></x:ExcelWorksheets></x:ExcelWorkbook></xml><![endif]--></head>
<body link="blue">
<table border=0 cellpadding=0 cellspacing=0 width=432 style='border-collapse:collapse;width:324pt'>
 <col width=72 span=6 style='width:54pt'>
 <tr height=19 style='height:14.25pt'>
  <td height=19 class=xl65 width=72 style='height:14.25pt;width:54pt'>单位名称</td>
  <td class=xl65 width=72 style='width:54pt'>产品名称</td>
  <td class=xl65>产品来源</td><td class=xl65>采购方式</td><td>金额<span style='mso-spacerun:yes'>&nbsp;</span>(元)</td>
  <td>合计(元)</td>
 </tr>
 <tr height=19 style='height:14.25pt'>
  <td rowspan=2 height=38 class=xl66 style='height:28.5pt'>郏县总工会<o:p></o:p></td>
  <td>小米</td><td>农户</td><td>线下</td><td align=right x:num="1234.5">1,234.50</td>
  <td rowspan=2 align=right x:num x:fmla="=SUM(E2:E3)">1534.5</td>
 </tr>
 <tr height=19><td>香油</td><td>扶贫832平台</td><td>线上</td><td align=right x:num>300</td></tr>
 <![if supportMisalignedColumns]>
 <tr height=0 style='display:none'><td width=72 style='width:54pt'></td></tr>
 <![endif]>
</table>
</body></html>"""


def test_it_expands_rowspan_blocks_of_the_consolidated_table() -> None:
    (sheet,) = read_html_tables(CONSOLIDATED, "正文")
    assert sheet.name == "表1"
    assert sheet.source == "正文"
    assert sheet.rows[1] == ("轻纺工会", None, "扶贫企业", "线下", "48", "138.35")
    assert sheet.rows[2] == (None, None, "农户", "线下", "82.56")
    assert sheet.rows[3] == (None, None, "内部平台", "线上", "4.694")
    assert sheet.rows[4][0] == "平高集团"
    assert sheet.rows[5] == (None, None, "农户", "线下", "25.09")


def test_it_records_each_merged_region() -> None:
    (sheet,) = read_html_tables(CONSOLIDATED, "正文")
    assert sheet.merged == (
        CellRange(1, 0, 3, 0),
        CellRange(1, 5, 3, 5),
        CellRange(4, 0, 5, 0),
        CellRange(4, 5, 5, 5),
        CellRange(6, 0, 6, 4),
    )


def test_it_puts_a_colspan_value_top_left_and_the_next_cell_after_the_span() -> None:
    (sheet,) = read_html_tables(CONSOLIDATED, "正文")
    assert sheet.rows[6] == ("合计", None, None, None, None, "3341.57")


def test_it_ignores_signature_and_layout_tables() -> None:
    html = f"<p>您好，报表如下</p>{SIGNATURE}{SMALL_DATA}{SIGNATURE}"
    sheets = read_html_tables(html, "正文")
    assert [sheet.name for sheet in sheets] == ["表1"]
    assert sheets[0].rows[1] == ("小米", "农户", "5")


@pytest.mark.parametrize("html", [CONSOLIDATED, SIGNATURE, SMALL_DATA, EXCEL_PASTE, "<p>无</p>", SIGNATURE * 3])
def test_it_agrees_with_classify_on_what_is_a_data_table(html: str) -> None:
    assert bool(read_html_tables(html, "正文")) == has_data_table(html)


def test_it_reads_a_nested_table_as_its_own_sheet() -> None:
    html = (
        "<table><tr><td>外1</td><td>外2</td><td>外3</td></tr>"
        "<tr><td>a</td><td>前<table><tr><td>内1</td><td>内2</td><td>内3</td></tr>"
        "<tr><td>x</td><td>y</td><td>z</td></tr></table>后</td><td>c</td></tr></table>"
    )
    outer, inner = read_html_tables(html, "正文")
    assert (outer.name, inner.name) == ("表1", "表2")
    assert outer.rows == (("外1", "外2", "外3"), ("a", "前后", "c"))
    assert inner.rows == (("内1", "内2", "内3"), ("x", "y", "z"))


def test_it_finds_a_data_table_inside_a_layout_table() -> None:
    html = f"<table><tr><td>{SMALL_DATA}</td></tr><tr><td>签名</td></tr></table>"
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows[0] == ("产品", "来源", "金额")


def test_it_reads_an_excel_range_pasted_into_webmail() -> None:
    (sheet,) = read_html_tables(EXCEL_PASTE, "正文")
    assert sheet.rows[0] == ("单位名称", "产品名称", "产品来源", "采购方式", "金额 (元)", "合计(元)")
    # The text the unit saw is kept; x:num and x:fmla are Excel's internals, not what was reported.
    assert sheet.rows[1] == ("郏县总工会", "小米", "农户", "线下", "1,234.50", "1534.5")
    assert sheet.rows[2] == (None, "香油", "扶贫832平台", "线上", "300")
    assert sheet.merged == (CellRange(1, 0, 2, 0), CellRange(1, 5, 2, 5))
    assert not any("mso" in str(value) for row in sheet.rows for value in row)


def test_it_turns_breaks_and_blocks_into_newlines_and_collapses_spaces() -> None:
    html = (
        "<table><tr><td>a</td><td>b</td><td>c</td></tr>"
        "<tr><td>第一行<br>第二行</td><td><p>段一</p><p>段二</p></td><td>  多个 \n\t 空格&nbsp;&nbsp;x  </td></tr>"
        "<tr><td>&lt;不是标签&gt; &amp; &#21512;&#x8BA1;</td><td><div>块</div>尾</td><td>&nbsp;</td></tr></table>"
    )
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows[1] == ("第一行\n第二行", "段一\n段二", "多个 空格 x")
    assert sheet.rows[2] == ("<不是标签> & 合计", "块\n尾")


def test_it_ignores_script_and_style_inside_cells() -> None:
    html = (
        "<table><tr><td>a<script>var x = '<td>1</td>';</script></td><td>b<style>td{color:red}</style></td>"
        "<td>c</td></tr><tr><td>1</td><td>2</td><td>3</td></tr></table>"
    )
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows == (("a", "b", "c"), ("1", "2", "3"))


def test_it_reads_unclosed_tags_as_a_browser_would() -> None:
    html = "<table><tr><td>a<td>b<td>c<tr><td>1<td>2<td>3"
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows == (("a", "b", "c"), ("1", "2", "3"))


def test_it_starts_a_row_for_cells_without_tr() -> None:
    html = "<table><td>a</td><td>b</td><td>c</td><tr><td>1</td><td>2</td><td>3</td></tr></table>"
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows == (("a", "b", "c"), ("1", "2", "3"))


def test_it_survives_marked_sections_html_parser_rejects() -> None:
    html = f"<![foo bar]>{SMALL_DATA}<![CDATA[x]]>"
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows[1] == ("小米", "农户", "5")


def test_it_clamps_a_huge_colspan() -> None:
    html = f'<table><tr><td colspan="100000">标题</td><td>尾</td><td>!</td></tr>{ROW_ABC}</table>'
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.merged[0] == CellRange(0, 0, 0, html_reader.MAX_COLSPAN - 1)
    assert sheet.rows[0][html_reader.MAX_COLSPAN] == "尾"


def test_it_clips_rowspans_at_the_last_row() -> None:
    html = (
        '<table><tr><td rowspan="0">全</td><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr>'
        '<tr><td rowspan="99999999999999999999999999">大</td><td>e</td><td>f</td></tr></table>'
    )
    (sheet,) = read_html_tables(html, "正文")
    assert len(sheet.rows) == 3
    assert sheet.merged[0] == CellRange(0, 0, 2, 0)
    assert sheet.rows[2] == (None, "大", "e", "f")


@pytest.mark.parametrize("span", ["-3", "abc", "", "2.5", "0x10", "\u0663"])
def test_it_reads_odd_span_values_as_browsers_do(span: str) -> None:
    html = f'<table><tr><td colspan="{span}">a</td><td>b</td><td>c</td></tr>{ROW_123}</table>'
    (sheet,) = read_html_tables(html, "正文")
    width = 2 if span == "2.5" else 1
    assert sheet.rows[0] == ("a", *([None] * (width - 1)), "b", "c")


def test_it_bounds_the_grid_for_hostile_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_reader, "MAX_GRID_CELLS", 50_000)
    row = '<td rowspan="1000" colspan="100">x</td>' * 50
    html = "<table>" + f"<tr>{row}</tr>" * 200 + "</table>"
    started = time.monotonic()
    (sheet,) = read_html_tables(html, "正文")
    assert time.monotonic() - started < 5
    assert sum(len(row) for row in sheet.rows) <= 50_000 + 200 * html_reader.MAX_COLS
    assert all(len(row) <= html_reader.MAX_COLS for row in sheet.rows)


def test_it_keeps_overlapping_spans_from_overwriting_values() -> None:
    html = (
        '<table><tr><td>a</td><td rowspan="2">b</td><td>c</td></tr>'
        '<tr><td colspan="3">d</td><td>e</td><td>f</td></tr></table>'
    )
    (sheet,) = read_html_tables(html, "正文")
    assert sheet.rows[0] == ("a", "b", "c")
    assert sheet.rows[1][0] == "d"
    assert sheet.rows[1][1:] == (None, None, "e", "f")


def test_it_returns_nothing_for_text_without_tables() -> None:
    assert read_html_tables("<p>本月无采购</p>", "正文") == ()
    assert read_html_tables("", "正文") == ()
