"""Attribution: the registered address decides; otherwise the unit named in subject, file names or body."""

from __future__ import annotations

import base64

import pytest

from mailbot.attribute import AliasIndex, Attribution, alias_index, attribute, derived_names, normalise_name
from mailbot.message.model import ParsedMessage
from mailbot.message.split import parse_message
from mailbot.problems import AMBIGUOUS_UNIT, REJECTED_SENDER, UNKNOWN_SENDER
from mailbot.registry import Registry, RegistryUnit

ADDRESSEE = ("平顶山市总工会", "市总工会", "市总")
REGISTRY = Registry(
    units=(
        RegistryUnit("郏县总工会", "县市区", aliases=("郏县", "郟县"), addresses=frozenset({"jxzgh@163.com"})),
        RegistryUnit("宝丰县总工会", "县市区", aliases=("宝丰",)),
        RegistryUnit("舞钢市总工会", "县市区"),
        RegistryUnit("舞钢公司工会", "直属企业"),
        RegistryUnit("平顶山发电分公司工会", "直属企业", aliases=("平顶山 发电分公司",)),
        RegistryUnit("市总工会", "市总", addresses=frozenset({"shizong@163.com"})),
        RegistryUnit("平煤神马集团工会", "直属企业", aliases=("平煤集团",)),
    ),
    rejected_addresses=frozenset({"spam@qq.com"}),
    addressee_names=ADDRESSEE,
)


def mail(
    subject: str = "统计表",
    sender: str = "someone@qq.com",
    body: str = "请查收",
    files: tuple[str, ...] = (),
    html: str = "",
) -> ParsedMessage:
    """Raw bytes as a Chinese client writes them: GBK-encoded subject and file names, GBK body."""
    encoded = base64.b64encode(subject.encode("gbk")).decode()
    head = f"From: {sender}\r\nSubject: =?gb2312?B?{encoded}?=\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
    text = b"Content-Type: text/plain; charset=gbk\r\n\r\n" + body.encode("gbk")
    parts = [text] if body else []
    if html:
        parts.append(b"Content-Type: text/html; charset=gbk\r\n\r\n" + html.encode("gbk"))
    for name in files:
        parts.append(b'Content-Disposition: attachment; filename="' + name.encode("gbk") + b'"\r\n\r\nPK')
    raw = head.encode() + b"".join(b"--B\r\n" + part + b"\r\n" for part in parts) + b"--B--\r\n"
    return parse_message(raw)


# ---------------------------------------------------------------------------------------------------------
# normalise_name


def test_it_normalises_width_space_variants_and_case() -> None:
    assert normalise_name("郟　縣 總工會") == "郏县总工会"
    assert normalise_name("平顶山\t發電分公司") == "平顶山发电分公司"
    assert normalise_name("ＰＭ集團") == "pm集团"
    assert normalise_name("宝\u200b丰\ufeff") == "宝丰"
    assert normalise_name("寶豐葉魯華衛東區門龍鋼陽礦熱電機紡財貿設團業協聯輕衞") == (
        "宝丰叶鲁华卫东区门龙钢阳矿热电机纺财贸设团业协联轻卫"
    )


def test_it_derives_short_names_only_when_two_characters_remain() -> None:
    assert derived_names(REGISTRY.units[0]) == ("郏县总工会", "郏县", "郟县")
    assert "舞钢公司" in derived_names(REGISTRY.units[3])
    assert derived_names(REGISTRY.units[5]) == ("市总工会",)


# ---------------------------------------------------------------------------------------------------------
# attribute


def test_it_attributes_a_registered_address_without_reading_content() -> None:
    result = attribute(mail(subject="宝丰县总工会报表", sender="JXZGH@163.com"), REGISTRY)
    assert result == Attribution("郏县总工会", sender_known=True, by="address")


def test_it_attributes_the_addressee_unit_by_its_registered_address() -> None:
    assert attribute(mail(subject="市总工会报表", sender="shizong@163.com"), REGISTRY).unit == "市总工会"


def test_it_never_attributes_a_rejected_address_by_content() -> None:
    result = attribute(mail(subject="郏县总工会报表", sender="spam@qq.com"), REGISTRY)
    assert (result.unit, result.sender_known) == (None, False)
    assert [f.code for f in result.findings] == [REJECTED_SENDER]
    assert "spam@qq.com" in result.findings[0].detail


def test_it_attributes_by_subject_and_asks_staff_to_confirm() -> None:
    result = attribute(mail(subject="郟县消费惠农统计表"), REGISTRY)
    assert (result.unit, result.sender_known, result.by) == ("郏县总工会", False, "subject")
    (finding,) = result.findings
    assert finding.code == UNKNOWN_SENDER
    assert finding.detail == "发件地址 someone@qq.com 未登记，按邮件内容归属于 郏县总工会，请工作人员确认"


def test_it_ignores_the_addressee_named_in_every_mail() -> None:
    result = attribute(mail(subject="报送平顶山市总工会：宝丰县统计表"), REGISTRY)
    assert (result.unit, result.by) == ("宝丰县总工会", "subject")


def test_it_prefers_a_unit_name_over_the_addressee_inside_it() -> None:
    assert attribute(mail(subject="舞钢市总工会报送市总"), REGISTRY).unit == "舞钢市总工会"


@pytest.mark.parametrize(
    ("subject", "unit"),
    [
        ("舞钢公司工会统计表", "舞钢公司工会"),
        ("舞钢公司统计表", "舞钢公司工会"),
        ("舞钢市统计表", "舞钢市总工会"),
        ("平顶山发电分公司统计表", "平顶山发电分公司工会"),
        ("平顶山 发电分公司 统计表", "平顶山发电分公司工会"),
        ("平煤集团工会统计", "平煤神马集团工会"),
        ("平煤神马集团统计", "平煤神马集团工会"),
    ],
)
def test_it_lets_the_longest_name_win(subject: str, unit: str) -> None:
    assert attribute(mail(subject=subject), REGISTRY).unit == unit


def test_it_falls_back_to_file_names_when_the_subject_names_nobody() -> None:
    result = attribute(mail(subject="统计表", files=("宝丰县消费惠农统计表.xlsx",)), REGISTRY)
    assert (result.unit, result.by) == ("宝丰县总工会", "filename")


def test_it_moves_on_when_a_source_names_several_units() -> None:
    parsed = mail(subject="郏县、宝丰县统计表", files=("舞钢市.xls", "郏县.xls"), body="舞钢公司工会\n联系人：张三")
    result = attribute(parsed, REGISTRY)
    assert (result.unit, result.by) == ("舞钢公司工会", "body")


def test_it_reads_the_signature_in_the_body() -> None:
    body = "附件是本单位统计表，请查收。\n\n——\n平顶山\n发电分公司工会 李四 13800000000"
    result = attribute(mail(subject="统计表", body=body), REGISTRY)
    assert (result.unit, result.by) == ("平顶山发电分公司工会", "body")


def test_it_reads_the_html_body_when_there_is_no_plain_text() -> None:
    result = attribute(mail(body="", html="<p>宝丰县总工会</p><style>.郏县{}</style>"), REGISTRY)
    assert (result.unit, result.by) == ("宝丰县总工会", "body")


def test_it_reports_ambiguity_naming_the_candidates() -> None:
    result = attribute(mail(subject="郏县与宝丰县", body="平煤集团、舞钢市"), REGISTRY)
    assert result.unit is None
    (finding,) = result.findings
    assert finding.code == AMBIGUOUS_UNIT
    for name in ("郏县总工会", "宝丰县总工会", "平煤神马集团工会", "舞钢市总工会"):
        assert name in finding.detail


def test_it_attributes_nobody_when_nothing_is_named() -> None:
    assert attribute(mail(subject="你好", body="报送市总工会"), REGISTRY) == Attribution(
        None, sender_known=False, by=""
    )


def test_it_does_not_join_two_file_names_into_one_name() -> None:
    assert attribute(mail(files=("甲宝.xls", "丰乙.xls")), REGISTRY).unit is None


def test_it_builds_the_alias_index_once_per_registry() -> None:
    assert alias_index(REGISTRY) is alias_index(REGISTRY)
    other = Registry(units=REGISTRY.units[:1])
    assert alias_index(other) is not alias_index(REGISTRY)
    assert alias_index(other).units_in("宝丰县") == frozenset()


def test_it_finds_every_unit_in_a_text() -> None:
    index = AliasIndex(REGISTRY)
    assert index.units_in("郟縣總工會和寶豐，报送市总") == {"郏县总工会", "宝丰县总工会"}
