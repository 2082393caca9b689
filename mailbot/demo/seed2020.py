"""The consolidated table of 平工办〔2020〕33号 (seed 003) as data: the figures the demo's mailbox is made from.

One block per unit, in the table's order, with the unit name exactly as the table spells it (郟县, 宝丰,
"平顶山 发电分公司"), its rows (产品来源, 采购方式, 金额 in 万元) and the 合计 it states. The seed's own oddities
are kept on purpose, because they are what units really send: 宝丰's channel 线上线上, 新华区's 扶贫836平台,
市直工会's 财政842平台, 工交工会 listing 驻村第一书记推荐 twice, 轻纺工会's 4.694 (three decimals), and
舞阳铁矿 with no rows and a 合计 of 0.

Every block adds up to its 合计 within 0.01万元; the only inexact one is 轻纺工会, whose rows sum to
138.354 while the table states 138.35 (the 4.694 was rounded in the total only). The grand total of the
stated 合计 is 3341.57万元, as the circular says.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

WAN = Decimal(10000)  # yuan per 万元


@dataclass(frozen=True)
class SeedRow:
    source: str  # 产品来源
    channel: str  # 采购方式
    amount_wan: Decimal  # 金额（万元）

    @property
    def amount_yuan(self) -> Decimal:
        return self.amount_wan * WAN


@dataclass(frozen=True)
class SeedBlock:
    unit: str  # 单位名称 as the table spells it
    rows: tuple[SeedRow, ...]
    stated_total_wan: Decimal  # 合计（万元）

    @property
    def rows_total_wan(self) -> Decimal:
        return sum((row.amount_wan for row in self.rows), Decimal(0))

    @property
    def stated_total_yuan(self) -> Decimal:
        return self.stated_total_wan * WAN


def _block(unit: str, total: str, *rows: tuple[str, str, str]) -> SeedBlock:
    return SeedBlock(unit, tuple(SeedRow(s, c, Decimal(a)) for s, c, a in rows), Decimal(total))


ONLINE, OFFLINE = "线上", "线下"

SEED_2020: tuple[SeedBlock, ...] = (
    _block(
        "汝州市",
        "163.31",
        ("832平台", ONLINE, "35.28"),
        ("驻村第一书记推荐", OFFLINE, "1.5"),
        ("农户", OFFLINE, "7.4"),
        ("贫困村", OFFLINE, "119.13"),
    ),
    _block(
        "舞钢市",
        "73.73",
        ("农户", OFFLINE, "32.18"),
        ("驻村第一书记推荐", OFFLINE, "0.15"),
        ("援疆产品", OFFLINE, "0.45"),
        ("扶贫直播带货", ONLINE, "1.2"),
        ("832平台", ONLINE, "0.9"),
        ("扶贫超市", OFFLINE, "4.53"),
        ("农购网", ONLINE, "0.34"),
        ("扶贫基地", OFFLINE, "5.34"),
        ("合作社", ONLINE, "15"),
        ("贫困地区农副产品网络销售平台", ONLINE, "13.64"),
    ),
    _block(
        "郟县",
        "176.84",
        ("农购网", ONLINE, "0.44"),
        ("禾苞蛋电商平台", ONLINE, "5.8"),
        ("合作社", OFFLINE, "20.6"),
        ("农户", OFFLINE, "20"),
        ("扶贫基地", OFFLINE, "130"),
    ),
    _block(
        "宝丰",
        "280.56",
        ("扶贫产品", "线上线上", "149.44"),  # sic: the seed's channel typo
        ("832平台", ONLINE, "4.84"),
        ("贫困地区农副产品网络销售平台", ONLINE, "0.25"),
        ("中国社会扶贫网", ONLINE, "5.18"),
        ("农购网", ONLINE, "1.3"),
        ("农户", OFFLINE, "0.95"),
        ("驻村第一书记推荐", OFFLINE, "5.46"),
        ("扶贫产销对接会", OFFLINE, "113.14"),
    ),
    _block(
        "鲁山县",
        "469.34",
        ("832平台", ONLINE, "402"),
        ("农户", OFFLINE, "40.92"),
        ("合作社、带贫企业", OFFLINE, "26.42"),
    ),
    _block(
        "叶县",
        "171.08",
        ("扶贫平台", ONLINE, "52.73"),
        ("驻村第一书记推荐", OFFLINE, "2.91"),
        ("合作社", OFFLINE, "6.36"),
        ("农户", OFFLINE, "39.36"),
        ("直播带货", ONLINE, "36.99"),
        ("叶县扶贫产品展示中心", OFFLINE, "32.73"),
    ),
    _block(
        "新华区",
        "3.65",
        ("扶贫836平台", ONLINE, "0.6"),  # sic: 836 for 832
        ("驻村第一书记推荐", OFFLINE, "2.56"),
        ("农户", OFFLINE, "0.49"),
    ),
    _block(
        "卫东区",
        "15.29",
        ("农购网", ONLINE, "5.53"),
        ("农户", OFFLINE, "9.76"),
    ),
    _block(
        "湛河区",
        "237.82",
        ("扶贫企业", OFFLINE, "150"),
        ("农户", OFFLINE, "87.3"),
        ("贫困地区农副产品网络销售平台", ONLINE, "0.52"),
    ),
    _block("石龙区", "12.08", ("合作社", OFFLINE, "12.08")),
    _block("高新区", "1.56", ("832平台", ONLINE, "1.56")),
    _block("新城区", "1.46", ("农户", OFFLINE, "1.46")),
    _block(
        "市直工会",
        "74.2",
        ("832平台", ONLINE, "16.01"),
        ("驻村第一书记推荐", OFFLINE, "12.81"),
        ("农户", OFFLINE, "15"),
        ("合作社", OFFLINE, "3"),
        ("扶贫产销对接会", OFFLINE, "2.2"),
        ("扶贫企业", OFFLINE, "6.75"),
        ("贫困地区农副产品网络销售平台", ONLINE, "13.45"),
        ("财政842平台", ONLINE, "4.98"),  # sic
    ),
    _block(
        "文教卫工会",
        "267.83",
        ("贫困地区农副产品网络销售平台", ONLINE, "15.33"),
        ("农户", OFFLINE, "39.27"),
        ("扶贫产品产销对接会", OFFLINE, "117.11"),
        ("驻村第一书记推荐", OFFLINE, "37.5"),
        ("扶贫832平台", ONLINE, "36.86"),
        ("合作社", OFFLINE, "1.46"),
        ("扶贫企业", OFFLINE, "20.3"),
    ),
    _block(
        "财贸工会",
        "135.64",
        ("扶贫832平台", ONLINE, "16.1"),
        ("河南农贸网平台", ONLINE, "23.46"),
        ("驻村第一书记推荐", OFFLINE, "19.08"),
        ("农户", OFFLINE, "77"),
    ),
    _block(
        "工交工会",
        "131.85",
        ("驻村第一书记推荐", OFFLINE, "5.6"),
        ("援疆产品", OFFLINE, "7.4"),
        ("扶贫产品产销对接会", OFFLINE, "3.76"),
        ("驻村第一书记推荐", OFFLINE, "20.46"),  # sic: the same source twice, not merged
        ("合作社", OFFLINE, "10.81"),
        ("农户", OFFLINE, "83.82"),
    ),
    _block(
        "建设工会",
        "25.98",
        ("农户", OFFLINE, "2.09"),
        ("扶贫超市", OFFLINE, "0.42"),
        ("消费扶贫平台", ONLINE, "0.4"),
        ("驻村第一书记推荐", OFFLINE, "17.67"),
        ("合作社", OFFLINE, "0.64"),
        ("扶贫企业", ONLINE, "1.21"),
        ("扶贫产品展销对接会", OFFLINE, "2.88"),
        ("贫困地区农副产品网络销售平台", ONLINE, "0.67"),
    ),
    _block(
        "轻纺工会",
        "138.35",  # the rows add up to 138.354: the seed rounded 4.694 in the total only
        ("扶贫企业", OFFLINE, "48"),
        ("驻村第一书记推荐", OFFLINE, "1.1"),
        ("农户", OFFLINE, "82.56"),
        ("合作社", OFFLINE, "2"),
        ("内部平台", ONLINE, "4.694"),
    ),
    _block(
        "平煤神马集团",
        "403.48",
        ("农户", OFFLINE, "322.66"),
        ("农购网", ONLINE, "1.44"),
        ("扶贫832平台", ONLINE, "5.92"),
        ("河南消费扶贫网", ONLINE, "73.46"),
    ),
    _block(
        "平高集团",
        "148.44",
        ("国家电网“爱如电”平台", OFFLINE, "8.04"),
        ("“惠农帮”平台", ONLINE, "115.31"),
        ("农户", OFFLINE, "25.09"),
    ),
    _block(
        "姚电公司",
        "59.27",
        ("电能e购", ONLINE, "44.77"),
        ("扶贫网", ONLINE, "14.5"),
    ),
    _block("江河机械", "15.39", ("农户", OFFLINE, "15.39")),
    _block(
        "热电公司",
        "26.7",
        ("驻村第一书记推荐", OFFLINE, "10.6"),
        ("商城县原耕电子商务平台", ONLINE, "16.1"),
    ),
    _block(
        "舞钢公司",
        "255",
        ("驻村第一书记推荐", OFFLINE, "151"),
        ("农户", OFFLINE, "104"),
    ),
    _block("供电公司", "23.64", ("“惠农帮”平台", ONLINE, "23.64")),
    _block(
        "热力集团",
        "13.3",
        ("电能e购", ONLINE, "1.16"),
        ("驻村第一书记推荐", OFFLINE, "12.14"),
    ),
    _block(
        "平顶山 发电分公司",
        "2.75",
        ("驻村第一书记推荐", ONLINE, "2"),
        ("农户", OFFLINE, "0.75"),
    ),
    _block(
        "市总工会",
        "13.03",
        ("农户", OFFLINE, "2.71"),
        ("扶贫产品展销对接会", OFFLINE, "1.05"),
        ("扶贫832平台", ONLINE, "1.04"),
        ("援鄂产品", ONLINE, "1.08"),
        ("扶贫企业", OFFLINE, "7.15"),
    ),
    _block("舞阳铁矿", "0"),
)

GRAND_TOTAL_WAN = Decimal("3341.57")  # the 合计 row of the seed's table

# Blocks whose rows do not add up to the stated 合计 within 0.01万元 in the seed itself: none.
INCONSISTENT_IN_SEED: frozenset[str] = frozenset()


def seed_block(unit: str) -> SeedBlock:
    """The block of the unit as the seed spells it. Raises KeyError for a name not in the table."""
    for block in SEED_2020:
        if block.unit == unit:
            return block
    raise KeyError(unit)
