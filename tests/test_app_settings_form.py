"""The application settings window's rules without widgets: every field's message as typed, the form → Settings,
and where file dialogs open."""
from __future__ import annotations

import pytest

from app.models import app_settings_form as form
from app.models.folders import LastFolder
from app.models.settings import AwsSettings, Settings


def values(**changes) -> dict[str, str]:
    return {**form.values_of(Settings()), **changes}


@pytest.mark.parametrize("field, typed, says", [
    ("stack", "1stack", "starts with a letter"), ("stack", "my_stack", "only letters, digits and hyphens"),
    ("region", "Frankfurt", "Not an AWS region"), ("region", "eu-central", "Not an AWS region"),
    ("openai_model", "", "Give a model name"), ("openai_model", "gpt 4", "no spaces"),
    ("openai_base_url", "localhost:11434", "http:// or https://"), ("idle", "0", "from 1 to 30"),
    ("idle", "five", "whole number"), ("local_model", "/tmp/model.bin", ".gguf file"),
    ("local_model", "/nowhere/model.gguf", "No such file"),
])
def test_a_wrong_field_says_what_is_wrong(field, typed, says):
    assert says in form.field_error(field, values(**{field: typed}))


@pytest.mark.parametrize("field, typed", [
    ("stack", ""), ("stack", "tl-fif-prod"), ("region", "eu-central-1"), ("region", "us-gov-west-1"),
    ("openai_base_url", ""), ("openai_base_url", "http://localhost:11434/v1"), ("idle", "30"),
    ("openai_model", "llama3.2:1b"),
])
def test_a_good_field_has_no_message(field, typed):
    assert form.field_error(field, values(**{field: typed})) == ""


def test_the_endpoint_fields_go_together():
    assert form.errors_of(values()) == {}, "all empty: the local cloud"
    errors = form.errors_of(values(api_url="https://api.example.com"))
    assert set(errors) == {"client_id", "auth_domain"} and "other AWS endpoint fields" in errors["client_id"]
    errors = form.errors_of(values(api_url="ftp://x", client_id="abc", auth_domain="https://auth.example.com"))
    assert set(errors) == {"api_url"}


def test_an_existing_gguf_file_is_accepted_and_the_form_becomes_settings(tmp_path):
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    typed = values(local_model=str(model), idle=" 12 ", openai_base_url="http://localhost:11434/v1/",
                   openai_model="llama3.2:1b", api_url="https://api.example.com/", client_id="abc123",
                   auth_domain="https://auth.example.com", region="eu-central-1")
    settings, errors = form.settings_from(typed, Settings(backend="openai"))
    assert errors == {}
    assert settings == Settings(backend="openai", idle=12, openai_base_url="http://localhost:11434/v1",
                                openai_model="llama3.2:1b", local_model=str(model),
                                aws=AwsSettings(api_url="https://api.example.com", client_id="abc123",
                                                auth_domain="https://auth.example.com", region="eu-central-1"))
    assert form.aws_changed(Settings().aws, settings.aws) and not form.aws_changed(settings.aws, settings.aws)


def test_a_form_with_a_wrong_field_gives_no_settings():
    settings, errors = form.settings_from(values(idle="99"), Settings())
    assert settings is None and list(errors) == ["idle"]


def test_file_dialogs_open_at_home_then_in_the_last_folder_used(tmp_path):
    folders = LastFolder(tmp_path)
    assert folders.path == tmp_path
    (tmp_path / "exports").mkdir()
    folders.remember(str(tmp_path / "exports" / "chat.md"))
    assert folders.path == tmp_path / "exports"
    folders.remember(str(tmp_path / "gone" / "x.md"))
    assert folders.path == tmp_path / "exports", "a folder that does not exist is not remembered"
