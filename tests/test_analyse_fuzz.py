"""No exception escapes the pure stages: random and mutated attachments go through split → read → recognise
→ normalise → check → drafts, and come out as a kind and named problems."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.analyse import TableRules, analyse
from mailbot.clock import TZ
from mailbot.config import LimitsConfig
from mailbot.problems import Finding
from mailbot.read.sniff import TABLE_EXTENSIONS, extension, sniff_type
from mailbot.registry import Registry, RegistryUnit

from corpus import annex3_workbook, csv_bytes, docx_table, gbk_zip, seed_2020_workbook
from mailgen import make_message

REGISTRY = Registry(
    (RegistryUnit("郏县总工会", "县市区", ("郏县",), frozenset({"jiaxian@example.cn"})),),
    addressee_names=("市总工会",),
)
RULES = TableRules.default()
WHEN = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
KINDS = {"report", "nil_report", "not_a_report", "rejected_input", "unknown_sender", "auto_or_bounce"}
SEEDS = [
    annex3_workbook(),
    seed_2020_workbook(),
    docx_table([("产品名称", "产品来源", "采购方式", "金额"), ("小米", "农户", "线下", "100")]),
    csv_bytes([("产品名称", "产品来源", "采购方式", "金额"), ("小米", "农户", "线下", "100")]),
    gbk_zip({"附件3.xlsx": annex3_workbook()}),
]
NAMES = st.sampled_from(["附件3.xlsx", "附件3.xls", "a.et", "a.docx", "a.doc", "a.csv", "a.zip", "a.ods", "x"])


def _analysed(name: str, data: bytes) -> tuple[str, tuple[Finding, ...]]:
    raw = make_message(attachments=[(name, data)], received=WHEN)
    analysis = analyse(raw, REGISTRY, LimitsConfig(), WHEN, rules=RULES)
    return analysis.kind, analysis.findings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, data=st.binary(max_size=3000))
def test_it_survives_random_bytes_in_any_attachment(name: str, data: bytes) -> None:
    kind, findings = _analysed(name, data)
    assert kind in KINDS
    assert all(f.detail for f in findings)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    name=NAMES,
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_it_survives_mutated_workbooks_and_documents(
    seed: int, name: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SEEDS[seed])
    for position, value in flips:
        data[position % len(data)] = value
    mutated = bytes(data[: cut % len(data)] if cut is not None else data)
    kind, findings = _analysed(name, mutated)
    assert kind in KINDS
    # A file that was damaged is either still read (the flip hit padding) or named; never silently dropped —
    # unless the damage left plain text under a name that is no table's (a csv whose header lost a comma,
    # attached as "x"): such a file is a note, by design (extract._worth_naming).
    a_note = sniff_type(mutated, name) == "text" and extension(name) not in TABLE_EXTENSIONS
    assert kind in {"report", "nil_report", "rejected_input"} or findings or a_note
