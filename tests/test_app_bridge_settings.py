"""The bridge setting: off unless chosen, one of three, kept in [app] with its local server's URL and model."""
from __future__ import annotations

import pytest

from app.models.settings import BRIDGE_NOTHING, BRIDGES, Settings, check_bridge
from app.services import config_file


def test_the_bridge_is_off_unless_chosen():
    assert Settings().bridge == BRIDGE_NOTHING
    assert BRIDGES == ("nothing", "openai", "local")


@pytest.mark.parametrize("value", ["gpt", "", "ollama"])
def test_an_unknown_bridge_is_refused_by_name(value):
    with pytest.raises(ValueError, match="bridge must be one of nothing, openai, local"):
        check_bridge(value)


def test_the_bridge_and_its_local_server_are_saved_in_the_app_section(tmp_path):
    path = tmp_path / "tl-fif.ini"
    config_file.save(Settings(bridge="local", bridge_url="http://127.0.0.1:8080/v1", bridge_model="tinyllama"),
                     path)
    s = config_file.load(path).settings
    assert (s.bridge, s.bridge_url, s.bridge_model) == ("local", "http://127.0.0.1:8080/v1", "tinyllama")
