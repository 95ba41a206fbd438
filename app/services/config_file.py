"""Reads and writes `~/.tl-fif.ini` (path overridable with TLFIF_CONFIG). Never holds tokens or keys.

    [app]     idle = 5            backend = aws | openai      keep_warm_max_minutes = 120 (1-480)
              theme = system | light | dark                   font_size = 0 (the desktop's) or 6-32
              bridge = nothing | openai | local (who answers while the GPU starts)   bridge_url, bridge_model
    [aws]     api_url, client_id, auth_domain, region, redirect_port
    [openai]  model, base_url
    [chat]    context_tokens = 2048   (the OpenAI model's context window; the history is trimmed to fit)
    [local]   model = ~/models/tinyllama-1.1b-chat.Q4_K_M.gguf   (the local cloud's model; empty: echo engine)
Keys this version does not know are kept when the app saves.

Also where the app's data lives (`data_dir()`: the chat history; overridable with TLFIF_DATA_DIR).
"""
from __future__ import annotations

import configparser
import os
import time
from dataclasses import dataclass
from pathlib import Path

from app.models.settings import (BACKEND_AWS, BACKEND_OPENAI, AwsSettings, Settings, check_bridge,
                                 check_context_tokens, check_idle, check_keep_warm_max)
from app.models.theme import check_font_size, check_theme

ENV_CONFIG_PATH = "TLFIF_CONFIG"


def config_path() -> Path:
    return Path(os.environ.get(ENV_CONFIG_PATH) or Path.home() / ".tl-fif.ini")


ENV_DATA_DIR = "TLFIF_DATA_DIR"
HISTORY_FILE = "history.sqlite3"


def data_dir() -> Path:
    """Where the app keeps its data (the chat history): $TLFIF_DATA_DIR, else $XDG_DATA_HOME/tl-fif, else
    ~/.local/share/tl-fif (the XDG base directory default)."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "tl-fif"


def history_path() -> Path:
    return data_dir() / HISTORY_FILE


@dataclass(frozen=True)
class LoadResult:
    settings: Settings
    warning: str | None = None  # every notice for the UI, one per line (None: the file was read as it is)


def load(path: Path | None = None) -> LoadResult:
    """Missing → defaults. A bad value → that setting's default alone, with a notice naming the key and the value.
    Only a file configparser cannot read → defaults, the file renamed aside, and a notice saying where."""
    path = path or config_path()
    if not path.exists():
        return LoadResult(Settings())
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as err:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
            where = f"kept as {aside}"
        except OSError:
            where = "left in place"
        return LoadResult(Settings(), warning=f"Settings file {path} was unreadable ({err}); "
                                              f"using defaults, the old file is {where}.")
    notices: list[str] = []
    settings = _from_parser(parser, notices)
    return LoadResult(settings, warning="\n".join(notices) or None)


def _backend(value: str) -> str:
    if value not in (BACKEND_AWS, BACKEND_OPENAI):
        raise ValueError(f"backend must be {BACKEND_AWS} or {BACKEND_OPENAI}")
    return value


def _port(value: str) -> int:
    port = int(value.strip())
    if not 1 <= port <= 65535:
        raise ValueError("redirect_port must be a port number from 1 to 65535")
    return port


def _from_parser(parser: configparser.ConfigParser, notices: list[str]) -> Settings:
    """Each key read on its own: a value its check refuses becomes the default, with a notice."""
    defaults = Settings()

    def read(section: str, key: str, default, check=str):
        if not parser.has_option(section, key):
            return default
        raw = parser.get(section, key)
        try:
            return check(raw)
        except (TypeError, ValueError) as err:
            notices.append(f"Settings: [{section}] {key} = {raw!r} is not valid ({err}); using {default!r}.")
            return default

    aws = AwsSettings(
        api_url=read("aws", "api_url", ""),
        client_id=read("aws", "client_id", ""),
        auth_domain=read("aws", "auth_domain", ""),
        region=read("aws", "region", ""),
        redirect_port=read("aws", "redirect_port", AwsSettings.redirect_port, _port),
    )
    return Settings(idle=read("app", "idle", defaults.idle, check_idle),
                    backend=read("app", "backend", defaults.backend, _backend), aws=aws,
                    openai_model=read("openai", "model", defaults.openai_model),
                    openai_base_url=read("openai", "base_url", ""),
                    keep_warm_max_minutes=read("app", "keep_warm_max_minutes", defaults.keep_warm_max_minutes,
                                               check_keep_warm_max),
                    context_tokens=read("chat", "context_tokens", defaults.context_tokens, check_context_tokens),
                    local_model=read("local", "model", defaults.local_model).strip(),
                    theme=read("app", "theme", defaults.theme, check_theme),
                    font_size=read("app", "font_size", defaults.font_size, check_font_size),
                    bridge=read("app", "bridge", defaults.bridge, check_bridge),
                    bridge_url=read("app", "bridge_url", ""),
                    bridge_model=read("app", "bridge_model", ""))


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path = path or config_path()
    parser = _existing(path)
    parser.read_dict({"app": {"idle": str(settings.idle), "backend": settings.backend,
                     "keep_warm_max_minutes": str(settings.keep_warm_max_minutes),
                     "theme": settings.theme, "font_size": str(settings.font_size), "bridge": settings.bridge,
                     "bridge_url": settings.bridge_url, "bridge_model": settings.bridge_model}})
    parser.read_dict({"aws": {"api_url": settings.aws.api_url, "client_id": settings.aws.client_id,
                     "auth_domain": settings.aws.auth_domain, "region": settings.aws.region,
                     "redirect_port": str(settings.aws.redirect_port)}})
    parser.read_dict({"openai": {"model": settings.openai_model, "base_url": settings.openai_base_url}})
    parser.read_dict({"chat": {"context_tokens": str(settings.context_tokens)}})
    if settings.local_model or parser.has_section("local"):
        parser.read_dict({"local": {"model": settings.local_model}})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        parser.write(fh)
    os.replace(tmp, path)
    return path


def _existing(path: Path) -> configparser.ConfigParser:
    """The file as it is, so keys and sections this version does not know survive a save (empty if unreadable)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return configparser.ConfigParser(interpolation=None)
    return parser
