"""Reads and writes `~/.tl-fif.ini` (path overridable with TLFIF_CONFIG). Never holds tokens or keys.

    [app]     idle = 5            backend = aws | openai      keep_warm_max_minutes = 120 (1-480)
              theme = system | light | dark                   font_size = 0 (the desktop's) or 6-32
              bridge = nothing | openai | local (who answers while the GPU starts)   bridge_url, bridge_model
    [aws]     api_url, client_id, auth_domain, region, redirect_port
    [openai]  model, base_url
    [chat]    context_tokens = 2048   (the model's context window; the chat history is trimmed to fit)

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
    warning: str | None = None  # set when the file was unreadable and moved aside


def load(path: Path | None = None) -> LoadResult:
    """Missing → defaults. Corrupt → defaults, the file renamed aside, and a warning for the UI."""
    path = path or config_path()
    if not path.exists():
        return LoadResult(Settings())
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
        return LoadResult(_from_parser(parser))
    except (configparser.Error, UnicodeDecodeError, ValueError) as err:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
            where = f"kept as {aside}"
        except OSError:
            where = "left in place"
        return LoadResult(Settings(), warning=f"Settings file {path} was unreadable ({err}); "
                                              f"using defaults, the old file is {where}.")


def _from_parser(parser: configparser.ConfigParser) -> Settings:
    defaults = Settings()
    idle = check_idle(parser.get("app", "idle", fallback=str(defaults.idle)))
    backend = parser.get("app", "backend", fallback=defaults.backend)
    if backend not in (BACKEND_AWS, BACKEND_OPENAI):
        raise ValueError(f"backend must be {BACKEND_AWS} or {BACKEND_OPENAI}, not {backend!r}")
    aws = AwsSettings(
        api_url=parser.get("aws", "api_url", fallback=""),
        client_id=parser.get("aws", "client_id", fallback=""),
        auth_domain=parser.get("aws", "auth_domain", fallback=""),
        region=parser.get("aws", "region", fallback=""),
        redirect_port=parser.getint("aws", "redirect_port", fallback=AwsSettings.redirect_port),
    )
    return Settings(idle=idle, backend=backend, aws=aws,
                    openai_model=parser.get("openai", "model", fallback=defaults.openai_model),
                    openai_base_url=parser.get("openai", "base_url", fallback=""),
                    keep_warm_max_minutes=check_keep_warm_max(parser.get(
                        "app", "keep_warm_max_minutes", fallback=str(defaults.keep_warm_max_minutes))),
                    context_tokens=check_context_tokens(parser.get("chat", "context_tokens",
                                                                   fallback=str(defaults.context_tokens))),
                    theme=check_theme(parser.get("app", "theme", fallback=defaults.theme)),
                    font_size=check_font_size(parser.get("app", "font_size", fallback=str(defaults.font_size))),
                    bridge=check_bridge(parser.get("app", "bridge", fallback=defaults.bridge)),
                    bridge_url=parser.get("app", "bridge_url", fallback=""),
                    bridge_model=parser.get("app", "bridge_model", fallback=""))


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path = path or config_path()
    parser = configparser.ConfigParser(interpolation=None)
    parser["app"] = {"idle": str(settings.idle), "backend": settings.backend,
                     "keep_warm_max_minutes": str(settings.keep_warm_max_minutes),
                     "theme": settings.theme, "font_size": str(settings.font_size), "bridge": settings.bridge,
                     "bridge_url": settings.bridge_url, "bridge_model": settings.bridge_model}
    parser["aws"] = {"api_url": settings.aws.api_url, "client_id": settings.aws.client_id,
                     "auth_domain": settings.aws.auth_domain, "region": settings.aws.region,
                     "redirect_port": str(settings.aws.redirect_port)}
    parser["openai"] = {"model": settings.openai_model, "base_url": settings.openai_base_url}
    parser["chat"] = {"context_tokens": str(settings.context_tokens)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        parser.write(fh)
    os.replace(tmp, path)
    return path
