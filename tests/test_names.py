"""Names senders choose, as attack surface: the check, the display form and the safe file name, each pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.message.names import MAX_NAME_BYTES, display_name, name_finding, name_hazards, safe_name, shown_name
from mailbot.read.office import ConversionError, LibreOffice

HOSTILE = {
    "../../etc/passwd.xlsx": "上级目录",
    "..\\..\\x.xls": "上级目录",
    "a/../../b.xlsx": "上级目录",
    "/etc/x.xlsx": "绝对路径",
    "\\\\server\\share\\x.xlsx": "绝对路径",
    "C:\\x.xlsx": "盘符",
    "c:x.xlsx": "盘符",
    "附件3\x00.exe.xlsx": "控制字符",
    "附件\x1b[31m3.xlsx": "控制字符",
    "附件\x853.xlsx": "控制字符",  # C1 NEL
    "附件\u20283.xlsx": "控制字符",  # a line separator would start a new line in a receipt
    "附件3\u202eslx.exe": "文字方向",
    "附件3\u2066x\u2069.xlsx": "文字方向",
    "附件3\u200f.xlsx": "文字方向",
}


@pytest.mark.parametrize("name,reason", HOSTILE.items(), ids=repr)
def test_it_finds_each_hostile_name(name: str, reason: str) -> None:
    finding = name_finding(name)
    assert finding is not None and finding.code == "path_traversal_name"
    assert reason in finding.detail and "内容照常读取" in finding.detail


@pytest.mark.parametrize(
    "name", ["附件3.xlsx", "报表/附件3（郏县）.xlsx", "a..b.xlsx", "..附件.xlsx", "郏县 附件3 .xls", "", "x.tar.gz"]
)
def test_it_leaves_ordinary_names_alone(name: str) -> None:
    assert name_hazards(name) == ()
    assert name_finding(name) is None


def test_it_names_every_hazard_of_a_name_once() -> None:
    assert name_hazards("C:\\..\\\u202ex\x00.xlsx") == (
        "含有上级目录（..）",
        "带有盘符",
        "含有控制字符",
        "含有文字方向控制字符（可使扩展名显示成另一种）",
    )


def test_it_shows_hidden_characters_to_staff_and_hides_them_from_display() -> None:
    name = "附件3\u202eslx.exe\x00"
    assert shown_name(name) == "附件3[U+202E]slx.exe[U+0000]"
    assert display_name(name) == "附件3slx.exe"
    finding = name_finding(name, "压缩包中的文件名")
    assert finding is not None and finding.detail.startswith("压缩包中的文件名「附件3[U+202E]slx.exe[U+0000]」")


@pytest.mark.parametrize(
    "name,safe",
    [
        ("../../etc/passwd.xlsx", "passwd.xlsx"),
        ("..\\..\\x.xls", "x.xls"),
        ("/etc/x.xlsx", "x.xlsx"),
        ("C:\\x.xlsx", "x.xlsx"),
        ("c:x.xlsx", "x.xlsx"),
        ("附件3\x00.xlsx", "附件3.xlsx"),
        ("附件3\u202eslx.exe", "附件3slx.exe"),
        ("a\u200bb.xlsx", "ab.xlsx"),  # zero-width space: invisible in a file manager
        ('a<b>:"c|d?*.xlsx', "a_b___c_d__.xlsx"),
        ("..", "附件"),
        ("", "附件"),
        ("/", "附件"),
        (" . ", "附件"),
        (".bashrc", "bashrc"),
        ("x.xlsx.", "x.xlsx"),
        ("NUL.xlsx", "_NUL.xlsx"),
        ("com1", "_com1"),
        ("报表/附件3（郏县）.xlsx", "附件3（郏县）.xlsx"),
    ],
)
def test_it_makes_a_safe_file_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def test_it_cuts_a_long_name_to_what_file_systems_allow_and_keeps_the_extension() -> None:
    cut = safe_name("统计" * 200 + ".xlsx")
    assert len(cut.encode("utf-8")) <= MAX_NAME_BYTES and cut.startswith("统计") and cut.endswith(".xlsx")
    assert "\ufffd" not in cut  # never cut inside a character
    assert safe_name("x" * 300) == "x" * MAX_NAME_BYTES


@pytest.mark.parametrize("name", [*HOSTILE, "..", "a/b/../../../c", "\x00", "\u202e"])
def test_a_safe_name_never_leaves_its_folder(name: str, tmp_path: Path) -> None:
    target = tmp_path / safe_name(name)
    assert target.parent == tmp_path and target.name not in ("", ".", "..")
    target.write_bytes(b"x")  # the file system accepts it
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("extension", ["../../etc/x", "xlsx/../..", "x\x00", "C:\\x"])
def test_libreoffice_takes_no_file_name_from_a_sender(extension: str) -> None:
    # It converts a fixed input.<ext> in a private folder; an extension is one of a known few or nothing is written.
    office = LibreOffice(program="/nonexistent/soffice")
    with pytest.raises(ConversionError, match="unexpected file extension"):
        office.convert(b"data", extension, "xlsx")
