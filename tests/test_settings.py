"""Settings and ~/.tl-fif.ini: defaults, round trip, corrupt files kept aside, the idle rule."""
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


@pytest.mark.parametrize("content", ["not an ini", "[app]\nidle = 99\n", "[app]\nbackend = other\n",
                                     "[app]\nidle = five\n"])
def test_corrupt_file_is_kept_aside_with_a_warning(tmp_path, content):
    path = tmp_path / "t.ini"
    path.write_text(content)
    result = config_file.load(path)
    assert result.settings == Settings()
    assert result.warning and str(path) in result.warning
    assert not path.exists()
    aside = list(tmp_path.glob("t.ini.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content


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
