"""The one reader of environment settings: each variable parsed by its declared type, else its default."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfyui_studio.config import StudioConfig
from comfyui_studio.settings_table import ENVIRONMENT, from_environment, is_set


@pytest.mark.parametrize(
    "raw,expected",
    [("", False), ("  ", False), ("1", True), ("yes", True), ("0", False), ("false", False), ("OFF", False)],
)
def test_a_bool_setting_is_off_only_when_it_says_so(raw: str, expected: bool) -> None:
    assert from_environment("STUDIO_DEV", {"STUDIO_DEV": raw}) is expected


def test_a_list_setting_is_split_on_commas_and_a_string_is_stripped() -> None:
    assert from_environment("STUDIO_ALLOWED_HOSTS", {"STUDIO_ALLOWED_HOSTS": " a.lan, ,b.lan "}) == ["a.lan", "b.lan"]
    assert from_environment("STUDIO_ALLOWED_HOSTS", {}) == []
    assert (
        from_environment("STUDIO_DB_URL", {"STUDIO_DB_URL": " sqlite+aiosqlite:///x.db\n"})
        == "sqlite+aiosqlite:///x.db"
    )


def test_an_unset_variable_gives_the_declared_default() -> None:
    assert from_environment("STUDIO_LOCAL_OWNER_LOGIN", {}) is True
    assert not is_set("STUDIO_LOCAL_OWNER_LOGIN", {"STUDIO_LOCAL_OWNER_LOGIN": " "})
    assert is_set("STUDIO_LOCAL_OWNER_LOGIN", {"STUDIO_LOCAL_OWNER_LOGIN": "0"})


def test_an_undeclared_variable_cannot_be_read() -> None:
    with pytest.raises(KeyError):
        from_environment("STUDIO_NOT_DECLARED", {})


def test_the_secret_keys_are_marked_secret() -> None:
    assert ENVIRONMENT["STUDIO_SECRET_KEY"].secret and ENVIRONMENT["STUDIO_SECRET_KEY_PREVIOUS"].secret
    assert [s.env for s in ENVIRONMENT.values() if s.secret] == ["STUDIO_SECRET_KEY", "STUDIO_SECRET_KEY_PREVIOUS"]


def test_the_configuration_reads_the_environment_through_the_table(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STUDIO_DEV", "1")
    monkeypatch.delenv("STUDIO_DB_URL", raising=False)
    config = StudioConfig.from_env(tmp_path / "default")
    assert config.data_dir == tmp_path / "data" and config.dev
    assert config.db_url.endswith(str(tmp_path / "data" / "studio.db"))
    monkeypatch.delenv("STUDIO_DATA_DIR")
    assert StudioConfig.from_env(tmp_path / "default").data_dir == tmp_path / "default"
