"""Settings and ~/.tl-fif.ini: defaults, round trip, corrupt files kept aside, the idle rule."""
import configparser

import pytest

from app.models.settings import AwsSettings, Settings, check_idle
from app.services import config_file


def test_missing_file_gives_defaults(tmp_path):
    result = config_file.load(tmp_path / "none.ini")
    assert result.settings == Settings() and result.warning is None
    assert result.settings.idle == 5 and result.settings.backend == "aws"
    assert not result.settings.aws.configured


def test_round_trip(tmp_path):
    path = tmp_path / "t.ini"
    s = Settings(idle=12, backend="openai", aws=AwsSettings(api_url="https://x", client_id="c",
                                                             auth_domain="https://d", region="eu-west-1"),
                 openai_model="m")
    config_file.save(s, path)
    assert config_file.load(path).settings == s


@pytest.mark.parametrize("content", ["not an ini", "[app\nidle = 5\n", "[app]\nidle = 1\nidle = 2\n"])
def test_an_unparseable_file_is_kept_aside_with_a_warning_saying_where(tmp_path, content):
    path = tmp_path / "t.ini"
    path.write_text(content)
    result = config_file.load(path)
    assert result.settings == Settings()
    assert not path.exists()
    aside = list(tmp_path.glob("t.ini.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content
    assert result.warning and str(path) in result.warning and str(aside[0]) in result.warning


@pytest.mark.parametrize("section, key, value, field", [
    ("app", "idle", "99", "idle"), ("app", "idle", "five", "idle"), ("app", "backend", "other", "backend"),
    ("app", "keep_warm_max_minutes", "0", "keep_warm_max_minutes"), ("chat", "context_tokens", "x", "context_tokens"),
    ("aws", "redirect_port", "99999", "aws"), ("app", "theme", "solarized", "theme"),
    ("app", "font_size", "99", "font_size"), ("app", "font_size", "big", "font_size"),
    ("app", "bridge", "gpt", "bridge"),
])
def test_one_bad_value_falls_back_alone_and_the_notice_names_key_and_value(tmp_path, section, key, value, field):
    path = tmp_path / "t.ini"
    good = Settings(idle=12, backend="openai", aws=AwsSettings(api_url="https://x", client_id="c",
                                                                auth_domain="https://d", region="eu-west-1"),
                    openai_model="m", context_tokens=4096, keep_warm_max_minutes=60, theme="dark", font_size=14,
                    bridge="local", bridge_url="http://127.0.0.1:8080/v1", bridge_model="tiny")
    config_file.save(good, path)
    text = path.read_text()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    parser[section][key] = value
    with open(path, "w") as fh:
        parser.write(fh)
    result = config_file.load(path)
    assert path.exists() and not list(tmp_path.glob("t.ini.corrupt-*")), "the file stays where it is"
    assert f"[{section}] {key}" in result.warning and repr(value) in result.warning
    expected = Settings() if field != "aws" else Settings(aws=AwsSettings())
    want = getattr(expected, field)
    if field == "aws":
        want = AwsSettings(api_url="https://x", client_id="c", auth_domain="https://d", region="eu-west-1")
    assert getattr(result.settings, field) == want
    others = [f for f in ("idle", "backend", "openai_model", "context_tokens", "keep_warm_max_minutes", "aws", "theme",
                          "font_size", "bridge", "bridge_url", "bridge_model") if f != field]
    for name in others:
        assert getattr(result.settings, name) == getattr(good, name), f"{name} kept its good value"


def test_unknown_keys_and_sections_survive_a_save(tmp_path):
    path = tmp_path / "t.ini"
    path.write_text("[app]\nidle = 7\nfuture_knob = on\n\n[plugins]\nspell = en\n")
    loaded = config_file.load(path)
    assert loaded.warning is None and loaded.settings.idle == 7
    config_file.save(loaded.settings.with_idle(9), path)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    assert parser["app"]["future_knob"] == "on" and parser["plugins"]["spell"] == "en"
    assert parser["app"]["idle"] == "9"


def test_the_local_model_round_trips(tmp_path):
    path = tmp_path / "t.ini"
    config_file.save(Settings(local_model="/models/tiny.gguf"), path)
    assert config_file.load(path).settings.local_model == "/models/tiny.gguf"


def test_env_var_overrides_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TLFIF_CONFIG", str(tmp_path / "x.ini"))
    assert config_file.config_path() == tmp_path / "x.ini"


@pytest.mark.parametrize("value, ok", [(1, 1), ("30", 30), (" 7 ", 7)])
def test_idle_accepts(value, ok):
    assert check_idle(value) == ok


@pytest.mark.parametrize("value", [0, 31, "", "abc", "2.5", None, True])
def test_idle_refuses(value):
    with pytest.raises(ValueError):
        check_idle(value)


def test_the_appearance_and_bridge_keys_round_trip(tmp_path):
    path = tmp_path / "t.ini"
    chosen = Settings(theme="dark", font_size=16, bridge="local", bridge_url="http://127.0.0.1:8080/v1",
                      bridge_model="tinyllama")
    config_file.save(chosen, path)
    loaded = config_file.load(path)
    assert loaded.warning is None and loaded.settings == chosen
