"""Configuration: the example file, the embedded units, validation messages and secrets."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import (
    UNIT_CATEGORIES,
    Config,
    DeadlinesConfig,
    ImapConfig,
    SmtpConfig,
    UnitConfig,
    config_from_dict,
    load_config,
    read_secret,
)
from mailbot.defaults import load_default_units
from mailbot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
DEFAULT_UNITS = ROOT / "mailbot" / "data" / "default_units.toml"
REFERENCE = ROOT / "docs" / "configuration.md"

# The 单位名称 column of seed 003 (平工办〔2020〕33号), top to bottom, spelled exactly as there.
SEED_TABLE_SPELLINGS = (
    "汝州市", "舞钢市", "郟县", "宝丰", "鲁山县", "叶县", "新华区", "卫东区", "湛河区", "石龙区",
    "高新区", "新城区", "市直工会", "文教卫工会", "财贸工会", "工交工会", "建设工会", "轻纺工会",
    "平煤神马集团", "平高集团", "姚电公司", "江河机械", "热电公司", "舞钢公司", "供电公司", "热力集团",
    "平顶山 发电分公司", "市总工会", "舞阳铁矿",
)  # fmt: skip

# Unit spellings in the text of the same circular, with the unit each one means.
SEED_TEXT_SPELLINGS = {
    "宝丰县总工会": "宝丰县总工会",
    "平煤集团": "平煤神马集团工会",
    "郟县": "郏县总工会",
    "鲁山": "鲁山县总工会",
    "公交工会": "工交工会",
    "姚电公司工会": "姚电公司工会",
    "舞钢市总工会": "舞钢市总工会",
    "叶县总工会": "叶县总工会",
    "湛河区工会": "湛河区总工会",
    "卫东区工会": "卫东区总工会",
    "热电公司工会": "热电公司工会",
    "热力公司工会": "热力集团工会",
    "平顶山发电分公司工会": "平顶山发电分公司工会",
    "江河机械有限公司工会": "江河机械有限公司工会",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def unit(name: str, email: str, category: str = "县市区", **extra: Any) -> dict[str, Any]:
    return {"name": name, "category": category, "emails": [email], **extra}


def spellings(units: tuple[UnitConfig, ...]) -> dict[str, str]:
    """Every name and alias, spaces removed, to the unit name; fails on a spelling claimed twice."""
    found: dict[str, str] = {}
    for u in units:
        for spelling in {"".join(s.split()) for s in (u.name, *u.aliases)}:
            assert spelling not in found, f"{spelling} belongs to {found[spelling]} and {u.name}"
            found[spelling] = u.name
    return found


@pytest.fixture(scope="module")
def example() -> Config:
    return load_config(EXAMPLE)


# ---------------------------------------------------------------------------------------------------------
# The example file and the embedded units


def test_it_loads_the_example_with_29_units_in_5_categories(example: Config) -> None:
    assert len(example.units) == 29
    assert Counter(u.category for u in example.units) == {
        "县市区": 12,
        "市直": 1,
        "产业工会": 5,
        "直属企业": 10,
        "市总": 1,
    }
    assert set(UNIT_CATEGORIES) == {u.category for u in example.units}


def test_it_keeps_the_seed_table_order(example: Config) -> None:
    by_spelling = spellings(example.units)
    table_order = [by_spelling["".join(s.split())] for s in SEED_TABLE_SPELLINGS]
    assert table_order == [u.name for u in example.units]


def test_it_resolves_each_seed_table_spelling_to_exactly_one_unit(example: Config) -> None:
    for spelling in SEED_TABLE_SPELLINGS:
        owners = [u.name for u in example.units if spelling in (u.name, *u.aliases)]
        assert len(owners) == 1, (spelling, owners)
    assert len({spellings(example.units)["".join(s.split())] for s in SEED_TABLE_SPELLINGS}) == 29


def test_it_resolves_the_circulars_spellings(example: Config) -> None:
    by_spelling = {a: u.name for u in example.units for a in (u.name, *u.aliases)}
    resolved = {s: by_spelling.get(s) for s in SEED_TEXT_SPELLINGS}
    assert resolved == SEED_TEXT_SPELLINGS
    assert by_spelling["郏县"] == "郏县总工会"


def test_it_keeps_ambiguous_spellings_out(example: Config) -> None:
    all_spellings = spellings(example.units)
    assert "舞钢" not in all_spellings  # 舞钢市 or 舞钢公司?
    assert "市直单位" not in all_spellings  # the circular's generic 市直单位 is not 市直工会
    assert "市总" not in all_spellings  # inside 舞钢市总工会, 汝州市总工会


def test_it_has_no_spelling_inside_another_units_spelling_but_the_known_one(example: Config) -> None:
    # A substring match would attribute 舞钢市总工会 to 市总工会: attribution must prefer the longest match.
    all_spellings = spellings(example.units)
    traps = {
        (inner, outer)
        for inner, inner_unit in all_spellings.items()
        for outer, outer_unit in all_spellings.items()
        if inner_unit != outer_unit and inner in outer
    }
    assert traps == {("市总工会", "舞钢市总工会"), ("市总工会", "汝州市总工会")}


def test_it_gives_every_unit_one_placeholder_address_and_phone(example: Config) -> None:
    emails = [e for u in example.units for e in u.emails]
    phones = [u.phone for u in example.units]
    assert all(len(u.emails) == 1 for u in example.units)
    assert len(set(emails)) == 29 and all(e.endswith("@example.cn") for e in emails)
    assert len(set(phones)) == 29 and all(p.startswith("0375-29") for p in phones)
    assert all(u.contact for u in example.units)
    assert example.imap.user not in emails  # the collecting mailbox is mailbot's own


def test_it_sets_every_key_in_the_example() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for section, cls in _sections().items():
        table = raw if section == "" else raw[section]
        assert set(table) >= _toml_keys(cls), section
    assert all(set(u) == _toml_keys(UnitConfig) for u in raw["units"])


def test_it_documents_every_key_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    sections: dict[str, type[Any]] = {**_sections(), "units": UnitConfig}
    for section, cls in sections.items():
        for key in _toml_keys(cls):
            dotted = f"{section}.{key}" if section else key
            assert f"`{dotted}`" in text, dotted


def test_it_matches_the_default_units_to_the_example(example: Config) -> None:
    assert load_default_units() == example.units
    # Byte for byte too, so a comment or ordering change is made in both places.
    assert _units_block(DEFAULT_UNITS) == _units_block(EXAMPLE)


def test_it_loads_the_default_units_through_the_validating_loader() -> None:
    units = load_default_units()
    assert len(units) == 29 and all(isinstance(u, UnitConfig) for u in units)
    assert units[2].name == "郏县总工会" and "郟县" in units[2].aliases


# ---------------------------------------------------------------------------------------------------------
# Defaults


def test_it_defaults_deadlines_to_the_2021_notice(example: Config) -> None:
    for deadlines in (Config().deadlines, example.deadlines):
        assert deadlines.annex1 == ("04-15",)
        assert deadlines.annex3 == ("06-15", "11-25")
        assert deadlines.annex2_within_days == 7
        assert deadlines.monthly is False  # the 2020 monthly table is not asked for in 2021


def test_it_defaults_to_163_and_leaves_the_mailbox_alone(example: Config) -> None:
    assert (Config().imap.host, Config().imap.port, Config().imap.ssl) == ("imap.163.com", 993, True)
    assert (Config().smtp.host, Config().smtp.port, Config().smtp.ssl) == ("smtp.163.com", 465, True)
    assert Config().imap.after_ingest == "none"
    assert example.imap == dataclasses.replace(ImapConfig(), user="pingqf163@163.com")
    assert example.smtp == dataclasses.replace(SmtpConfig(), user="pingqf163@163.com", from_address="pingqf163@163.com")


def test_it_uses_defaults_for_an_empty_file(tmp_path: Path) -> None:
    config = load_text(tmp_path, "")
    assert dataclasses.replace(config, base_dir=".") == Config()
    assert config.base_dir == str(tmp_path.resolve())
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'mailbot-data' / 'mailbot.db'}"


def test_it_resolves_data_dir_against_the_config_folder(tmp_path: Path) -> None:
    config = load_text(tmp_path, 'data_dir = "state"\n[database]\nurl = "postgresql://u@127.0.0.1:5432/m"\n')
    assert config.data_path == tmp_path.resolve() / "state"
    assert config.archive_path == tmp_path.resolve() / "state" / "archive"
    assert config.database_url == "postgresql://u@127.0.0.1:5432/m"


def test_it_collects_own_addresses_case_insensitively(example: Config) -> None:
    config = config_from_dict({"imap": {"user": "Pingqf163@163.com"}, "staff": {"own_addresses": ["Bot@X.cn "]}})
    assert config.own_addresses == {"pingqf163@163.com", "bot@x.cn"}
    assert example.own_addresses == {"pingqf163@163.com"}


# ---------------------------------------------------------------------------------------------------------
# Validation: every message names the key


def test_it_rejects_an_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^datadir: unknown key"):
        load_text(tmp_path, 'datadir = "x"\n')


def test_it_rejects_an_unknown_key_in_imap(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"imap\.pasword_env: unknown key") as caught:
        load_text(tmp_path, '[imap]\npasword_env = "X"\n')
    assert "password_env" in str(caught.value)  # the known keys are listed


def test_it_rejects_an_unknown_key_in_a_unit() -> None:
    with pytest.raises(ConfigError, match=r"units\[0\]\.email: unknown key"):
        config_from_dict({"units": [{"name": "a", "category": "市总", "email": "a@x.cn"}]})


def test_it_rejects_base_dir_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^base_dir: unknown key"):
        load_text(tmp_path, 'base_dir = "/elsewhere"\n')


def test_it_rejects_a_string_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"imap\.port: expected an integer, got a string"):
        load_text(tmp_path, '[imap]\nport = "993"\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[imap]\nssl = 1\n", r"imap\.ssl: expected true or false"),
        ("[smtp]\nport = true\n", r"smtp\.port: expected an integer, got a boolean"),
        ('[deadlines]\nannex1 = "04-15"\n', r"deadlines\.annex1: expected a list"),
        ('[reminders]\nbefore_days = [7, "3"]\n', r"reminders\.before_days\[1\]: expected an integer"),
        ("imap = 3\n", r"imap: expected a table"),
        ("[staff]\ndigest_to = [1]\n", r"staff\.digest_to\[0\]: expected a string"),
    ],
)
def test_it_rejects_wrong_types(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_text(tmp_path, text)


def test_it_rejects_emails_that_are_not_a_list() -> None:
    units = [unit("a", "a@x.cn"), unit("b", "b@x.cn"), {"name": "c", "category": "市直", "emails": "c@x.cn"}]
    with pytest.raises(ConfigError, match=r"units\[2\]\.emails: expected a list, got a string"):
        config_from_dict({"units": units})


def test_it_requires_a_unit_name() -> None:
    with pytest.raises(ConfigError, match=r"units\[0\]\.name: required key is missing"):
        config_from_dict({"units": [{"category": "市总"}]})


def test_it_rejects_a_duplicate_unit_name() -> None:
    with pytest.raises(ConfigError, match=r"units\[1\]\.name: duplicate unit name '叶县总工会' \(also units\[0\]\)"):
        config_from_dict({"units": [unit("叶县总工会", "a@x.cn"), unit("叶县总工会", "b@x.cn")]})


def test_it_rejects_an_address_used_by_two_units_whatever_the_case() -> None:
    units = [unit("叶县总工会", "YeXian@Example.cn"), unit("鲁山县总工会", "yexian@example.CN ")]
    with pytest.raises(ConfigError, match=r"units\[1\]\.emails\[0\]: address .* already used by units\[0\]"):
        config_from_dict({"units": units})


def test_it_rejects_something_that_is_not_an_address() -> None:
    with pytest.raises(ConfigError, match=r"units\[0\]\.emails\[0\]: not an email address"):
        config_from_dict({"units": [unit("a", "nobody")]})


def test_it_rejects_an_alias_claimed_by_two_units() -> None:
    units = [
        unit("舞钢市总工会", "a@x.cn", aliases=["舞钢"]),
        unit("舞钢公司工会", "b@x.cn", "直属企业", aliases=["舞 钢"]),
    ]
    with pytest.raises(
        ConfigError, match=r"units\[1\]\.aliases\[0\]: '舞 钢' is already a name or alias of units\[0\]"
    ):
        config_from_dict({"units": units})


def test_it_allows_an_alias_equal_to_the_units_own_name() -> None:
    config = config_from_dict({"units": [unit("叶县总工会", "a@x.cn", aliases=["叶县", "叶县总工会"])]})
    assert config.units[0].aliases == ("叶县", "叶县总工会")


def test_it_rejects_a_bad_category() -> None:
    with pytest.raises(ConfigError, match=r"units\[0\]\.category: '县区' is not one of 县市区, 产业工会"):
        config_from_dict({"units": [unit("a", "a@x.cn", "县区")]})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("4/15", r"deadlines\.annex1\[0\]: expected MM-DD, got '4/15'"),
        ("04-15-01", r"deadlines\.annex1\[0\]: expected MM-DD"),
        ("13-01", r"deadlines\.annex1\[0\]: not a valid month-day: '13-01'"),
        ("02-30", r"deadlines\.annex1\[0\]: not a valid month-day: '02-30'"),
        ("04-31", r"deadlines\.annex1\[0\]: not a valid month-day"),
    ],
)
def test_it_rejects_a_bad_month_day(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"deadlines": {"annex1": [value]}})


@pytest.mark.parametrize(
    ("deadlines", "message"),
    [
        ({"annex3_close": ["06-30"]}, r"deadlines\.annex3_close: expected one close date per deadline \(2\), got 1"),
        ({"annex3_close": ["06-10", "12-31"]}, r"deadlines\.annex3_close\[0\]: 06-10 is before its deadline 06-15"),
        ({"annex1_close": ["4-31"]}, r"deadlines\.annex1_close\[0\]: not a valid month-day"),
        ({"monthly_close_days": 0}, r"deadlines\.monthly_close_days: must be a positive integer"),
        ({"monthly": True, "annex3": ["06-15"]}, r"deadlines\.monthly: .*remove deadlines\.annex3"),
    ],
)
def test_it_rejects_close_dates_that_do_not_fit_the_deadlines(deadlines: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"deadlines": deadlines})


def test_it_lets_monthly_reporting_replace_the_fixed_annex3_deadlines() -> None:
    deadlines = config_from_dict({"deadlines": {"monthly": True}}).deadlines
    assert (deadlines.monthly, deadlines.annex3, deadlines.annex1) == (True, (), ("04-15",))
    assert config_from_dict({"deadlines": {"monthly": True, "annex3": []}}).deadlines.annex3 == ()


def test_it_rejects_a_bad_tables_section() -> None:
    with pytest.raises(ConfigError, match=r"tables\.conversion_timeout_seconds: must be a positive integer"):
        config_from_dict({"tables": {"conversion_timeout_seconds": 0}})
    with pytest.raises(ConfigError, match=r"tables\.libre_office: unknown key"):
        config_from_dict({"tables": {"libre_office": "soffice"}})


def test_it_names_the_position_of_a_bad_annex3_date() -> None:
    with pytest.raises(ConfigError, match=r"deadlines\.annex3\[1\]"):
        config_from_dict({"deadlines": {"annex3": ["06-15", "11-31"]}})


def test_it_accepts_february_29() -> None:
    assert config_from_dict({"deadlines": {"annex1": ["02-29"]}}).deadlines == DeadlinesConfig(annex1=("02-29",))


@pytest.mark.parametrize("action", ["delete", "move:", "move", "Flag", ""])
def test_it_rejects_a_bad_after_ingest(action: str) -> None:
    with pytest.raises(ConfigError, match=r"imap\.after_ingest: expected 'none', 'flag' or 'move:<folder>'"):
        config_from_dict({"imap": {"after_ingest": action}})


@pytest.mark.parametrize("action", ["none", "flag", "move:已处理", "move:Archive/2021"])
def test_it_accepts_the_after_ingest_actions(action: str) -> None:
    assert config_from_dict({"imap": {"after_ingest": action}}).imap.after_ingest == action


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"imap": {"port": 0}}, "imap.port"),
        ({"imap": {"batch_size": -1}}, "imap.batch_size"),
        ({"smtp": {"timeout_seconds": 0}}, "smtp.timeout_seconds"),
        ({"limits": {"max_attachment_bytes": 0}}, "limits.max_attachment_bytes"),
        ({"deadlines": {"annex2_within_days": 0}}, "deadlines.annex2_within_days"),
        ({"reminders": {"after_days": [1, -3]}}, "reminders.after_days[1]"),
        ({"smtp": {"ssl": True, "starttls": True}}, "smtp.starttls"),
    ],
)
def test_it_rejects_values_out_of_range(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}:"):
        config_from_dict(raw)


def test_it_accepts_starttls_on_587() -> None:
    smtp = config_from_dict({"smtp": {"port": 587, "ssl": False, "starttls": True}}).smtp
    assert (smtp.port, smtp.ssl, smtp.starttls) == (587, False, True)


def test_it_rejects_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[imap\nport = 993\n")
    with pytest.raises(ConfigError, match=r"mailbot\.toml: not valid TOML"):
        load_config(path)


def test_it_rejects_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mailbot.toml"
    path.write_bytes('data_dir = "数据"\n'.encode("gb18030"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_it_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*absent\.toml"):
        load_config(tmp_path / "absent.toml")


# ---------------------------------------------------------------------------------------------------------
# Secrets


def test_it_reads_a_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\n", encoding="utf-8")
    monkeypatch.setenv("MAILBOT_TEST_SECRET", "from-env")
    assert read_secret("MAILBOT_TEST_SECRET", str(tmp_path / "secret"), "imap") == "from-env"


def test_it_reads_a_secret_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAILBOT_TEST_SECRET", raising=False)
    (tmp_path / "secret").write_text("  auth-code \n", encoding="utf-8")
    assert read_secret("MAILBOT_TEST_SECRET", str(tmp_path / "secret"), "imap") == "auth-code"


def test_it_reads_a_relative_secret_file_from_the_config_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MAILBOT_IMAP_PASSWORD", raising=False)
    monkeypatch.chdir(ROOT)  # anywhere but the config folder
    (tmp_path / "imap.secret").write_text("auth-code\n", encoding="utf-8")
    config = load_text(tmp_path, '[imap]\npassword_file = "imap.secret"\n')
    imap = config.imap
    assert read_secret(imap.password_env, imap.password_file, "imap", config.base_dir) == "auth-code"


def test_it_falls_back_to_the_file_when_the_variable_is_empty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAILBOT_TEST_SECRET", "")
    (tmp_path / "secret").write_text("auth-code", encoding="utf-8")
    assert read_secret("MAILBOT_TEST_SECRET", str(tmp_path / "secret"), "smtp") == "auth-code"


def test_it_names_the_key_when_no_secret_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILBOT_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"^smtp\.password_env: environment variable MAILBOT_TEST_SECRET is not set"):
        read_secret("MAILBOT_TEST_SECRET", "", "smtp")


def test_it_names_the_key_when_the_secret_file_is_unreadable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAILBOT_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"^imap\.password_file: cannot read"):
        read_secret("MAILBOT_TEST_SECRET", str(tmp_path / "missing"), "imap")


# ---------------------------------------------------------------------------------------------------------
# Helpers that read the dataclasses, so the tests follow them


def _sections() -> dict[str, type[Any]]:
    """'' for the top level, then each [section] and its dataclass."""
    hints = typing.get_type_hints(Config)
    found: dict[str, type[Any]] = {"": Config}
    found.update({f.name: hints[f.name] for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name])})
    return found


def _toml_keys(cls: type[Any]) -> set[str]:
    if cls is Config:
        hints = typing.get_type_hints(Config)
        return {
            f.name
            for f in dataclasses.fields(Config)
            if not dataclasses.is_dataclass(hints[f.name]) and f.name not in ("units", "base_dir")
        }
    return {{"from_address": "from"}.get(f.name, f.name) for f in dataclasses.fields(cls)}


def _units_block(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("# 01.") :]
