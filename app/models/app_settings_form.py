"""The application settings window's rules, pure: each field as typed → what is wrong with it ('' when fine), and
the whole form → Settings. Tested without widgets; the window shows each field's message as the user types, and
the settings controller applies the same rules again before it saves.

Fields (all text as typed): stack, region, api_url, client_id, auth_domain (AWS: the three endpoint fields all
filled, or all empty for the local cloud), openai_model, openai_base_url (empty: api.openai.com; any
OpenAI-compatible server, e.g. Ollama's http://localhost:11434/v1), local_model (a .gguf file, or empty), idle,
bridge_url and bridge_model (the cold-start bridge's local server; the bridge itself, the theme and the font size
are applied as soon as they are picked, by their own controllers).
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

from app.models.settings import AwsSettings, Settings, check_idle

FIELDS = ("stack", "region", "api_url", "client_id", "auth_domain", "openai_model", "openai_base_url",
          "local_model", "idle", "bridge_url", "bridge_model")
ENDPOINT_FIELDS = ("api_url", "client_id", "auth_domain")
_STACK = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")  # CloudFormation's stack name rule
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_MODEL = re.compile(r"^\S{1,200}$")


def values_of(settings: Settings, stack: str = "") -> dict[str, str]:
    """The form's fields filled from `settings`."""
    return {"stack": stack, "region": settings.aws.region, "api_url": settings.aws.api_url,
            "client_id": settings.aws.client_id, "auth_domain": settings.aws.auth_domain,
            "openai_model": settings.openai_model, "openai_base_url": settings.openai_base_url,
            "local_model": settings.local_model, "idle": str(settings.idle), "bridge_url": settings.bridge_url,
            "bridge_model": settings.bridge_model}


def _url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{what} must be an http:// or https:// address"
    return ""


def field_error(name: str, values: Mapping[str, str], *, is_file: Callable[[Path], bool] = Path.is_file) -> str:
    """What is wrong with field `name` given the whole form (some rules look at neighbours); '' when fine."""
    value = (values.get(name) or "").strip()
    if name == "stack":
        return "" if not value or _STACK.match(value) else \
            "A stack name starts with a letter and has only letters, digits and hyphens (at most 128)"
    if name == "region":
        return "" if not value or _REGION.match(value) else "Not an AWS region name (like eu-central-1)"
    if name in ENDPOINT_FIELDS:
        filled = [f for f in ENDPOINT_FIELDS if (values.get(f) or "").strip()]
        if not value:
            return "Needed with the other AWS endpoint fields (or leave all three empty for the local cloud)" \
                if filled else ""
        if name == "api_url":
            return _url(value, "The API URL")
        if name == "auth_domain":
            return _url(value, "The sign-in domain")
        return "" if re.match(r"^[\w+]{1,128}$", value) else "A Cognito app client id has only letters and digits"
    if name == "openai_model":
        return "" if _MODEL.match(value) else "Give a model name (no spaces)"
    if name == "openai_base_url":
        return "" if not value else _url(value, "The base URL")
    if name == "local_model":
        if not value:
            return ""
        path = Path(value).expanduser()
        if path.suffix.lower() != ".gguf":
            return "The local model must be a .gguf file"
        return "" if is_file(path) else f"No such file: {path}"
    if name == "bridge_url":
        return "" if not value else _url(value, "The bridge server's URL")
    if name == "bridge_model":
        return "" if not value or _MODEL.match(value) else "A model name has no spaces"
    if name == "idle":
        try:
            check_idle(value)
        except ValueError as err:
            return str(err)
        return ""
    raise KeyError(name)


def errors_of(values: Mapping[str, str], **kwargs) -> dict[str, str]:
    """Every field's message, only those with something wrong."""
    errors = {name: field_error(name, values, **kwargs) for name in FIELDS}
    return {name: message for name, message in errors.items() if message}


def settings_from(values: Mapping[str, str], base: Settings, **kwargs) -> tuple[Settings | None, dict[str, str]]:
    """(the settings the form describes, {}) — or (None, what is wrong with which field)."""
    errors = errors_of(values, **kwargs)
    if errors:
        return None, errors
    v = {name: (values.get(name) or "").strip() for name in FIELDS}
    aws = replace(base.aws, api_url=v["api_url"].rstrip("/"), client_id=v["client_id"],
                  auth_domain=v["auth_domain"].rstrip("/"), region=v["region"])
    local = str(Path(v["local_model"]).expanduser()) if v["local_model"] else ""
    return replace(base, aws=aws, openai_model=v["openai_model"], openai_base_url=v["openai_base_url"].rstrip("/"),
                   local_model=local, idle=check_idle(v["idle"]), bridge_url=v["bridge_url"].rstrip("/"),
                   bridge_model=v["bridge_model"]), {}


def aws_changed(old: AwsSettings, new: AwsSettings) -> bool:
    """The AWS endpoint changed: it takes effect when the app starts again (the endpoint is fixed at start)."""
    return (old.api_url, old.client_id, old.auth_domain, old.region) != \
        (new.api_url, new.client_id, new.auth_domain, new.region)
