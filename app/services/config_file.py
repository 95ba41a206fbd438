"""Reads and writes `~/.tl-fif.ini` (path overridable with TLFIF_CONFIG). Never holds tokens or keys.

    [app]     idle = 5            backend = aws | openai
    [aws]     api_url, client_id, auth_domain, region, redirect_port
    [openai]  model, base_url
"""
from __future__ import annotations

import configparser
import os
import time
from dataclasses import dataclass
from pathlib import Path

from app.models.settings import BACKEND_AWS, BACKEND_OPENAI, AwsSettings, Settings, check_idle

ENV_CONFIG_PATH = "TLFIF_CONFIG"


def config_path() -> Path:
    return Path(os.environ.get(ENV_CONFIG_PATH) or Path.home() / ".tl-fif.ini")


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
                    openai_base_url=parser.get("openai", "base_url", fallback=""))


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path = path or config_path()
    parser = configparser.ConfigParser(interpolation=None)
    parser["app"] = {"idle": str(settings.idle), "backend": settings.backend}
    parser["aws"] = {"api_url": settings.aws.api_url, "client_id": settings.aws.client_id,
                     "auth_domain": settings.aws.auth_domain, "region": settings.aws.region,
                     "redirect_port": str(settings.aws.redirect_port)}
    parser["openai"] = {"model": settings.openai_model, "base_url": settings.openai_base_url}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        parser.write(fh)
    os.replace(tmp, path)
    return path
