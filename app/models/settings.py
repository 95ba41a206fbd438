"""The user's settings, as held in `~/.tl-fif.ini`. Pure data and validation: no file I/O here."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from tlfif_common.jobs import IDLE_MAX, IDLE_MIN
from tlfif_common.keepwarm import DEFAULT_MAX_MINUTES as DEFAULT_KEEP_WARM_MAX_MINUTES
from tlfif_common.keepwarm import MAX_MINUTES_MAX as KEEP_WARM_MAX_MINUTES_MAX
from tlfif_common.keepwarm import MAX_MINUTES_MIN as KEEP_WARM_MAX_MINUTES_MIN

from app.models.theme import DEFAULT_FONT_SIZE, DEFAULT_THEME

BACKEND_AWS = "aws"
BACKEND_OPENAI = "openai"
DEFAULT_IDLE = 5
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_REDIRECT_PORT = 8765
DEFAULT_CONTEXT_TOKENS = 2048  # TinyLlama-1.1B-Chat
BRIDGE_NOTHING, BRIDGE_OPENAI, BRIDGE_LOCAL = "nothing", "openai", "local"
BRIDGES = (BRIDGE_NOTHING, BRIDGE_OPENAI, BRIDGE_LOCAL)  # who answers while the GPU starts
CONTEXT_TOKENS_MIN, CONTEXT_TOKENS_MAX = 512, 1_000_000


@dataclass(frozen=True)
class AwsSettings:
    """Where the deployed stack is. Empty api_url means: no AWS stack configured, use the local cloud."""
    api_url: str = ""
    client_id: str = ""
    auth_domain: str = ""  # Cognito hosted UI base, e.g. https://tl-fif-123.auth.eu-central-1.amazoncognito.com
    region: str = ""
    redirect_port: int = DEFAULT_REDIRECT_PORT

    @property
    def configured(self) -> bool:
        return bool(self.api_url and self.client_id and self.auth_domain)


@dataclass(frozen=True)
class Settings:
    idle: int = DEFAULT_IDLE
    backend: str = BACKEND_AWS
    aws: AwsSettings = field(default_factory=AwsSettings)
    openai_model: str = DEFAULT_OPENAI_MODEL
    openai_base_url: str = ""  # empty: the SDK's default (api.openai.com)
    keep_warm_max_minutes: int = DEFAULT_KEEP_WARM_MAX_MINUTES  # keep-warm's maximum lifetime: the GPU stops then
    context_tokens: int = DEFAULT_CONTEXT_TOKENS  # the OpenAI model's context window: the history is trimmed to fit
    local_model: str = ""  # a GGUF file the local cloud serves with llama.cpp; empty: the echo engine
    theme: str = DEFAULT_THEME  # light | dark | system (app.models.theme)
    font_size: int = DEFAULT_FONT_SIZE  # points; 0: the desktop's size
    bridge: str = BRIDGE_NOTHING  # who else answers while the GPU cold-starts; nothing goes to OpenAI unless chosen
    bridge_url: str = ""          # "local": an OpenAI-compatible server's base URL (llama.cpp, Ollama…)
    bridge_model: str = ""        # "local": the model name that server wants ('' → whatever it serves)

    def with_idle(self, idle: int) -> Settings:
        return replace(self, idle=check_idle(idle))


def check_bridge(value) -> str:
    bridge = str(value).strip().lower()
    if bridge not in BRIDGES:
        raise ValueError(f"bridge must be one of {', '.join(BRIDGES)}, not {value!r}")
    return bridge


def check_idle(value) -> int:
    """The IdleTimeout rule: a whole number of minutes from 1 to 30. ValueError says what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"Idle timeout must be a whole number of minutes from {IDLE_MIN} to {IDLE_MAX}")
    try:
        idle = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"Idle timeout must be a whole number of minutes from {IDLE_MIN} to {IDLE_MAX}") from None
    if not IDLE_MIN <= idle <= IDLE_MAX:
        raise ValueError(f"Idle timeout must be from {IDLE_MIN} to {IDLE_MAX} minutes")
    return idle


def check_context_tokens(value) -> int:
    """[chat] context_tokens: the model's context window in tokens (TinyLlama: 2048)."""
    try:
        tokens = int(str(value).strip())
    except (TypeError, ValueError):
        tokens = None
    if isinstance(value, bool) or tokens is None or not CONTEXT_TOKENS_MIN <= tokens <= CONTEXT_TOKENS_MAX:
        raise ValueError(f"context_tokens must be a whole number from {CONTEXT_TOKENS_MIN} to {CONTEXT_TOKENS_MAX}")
    return tokens


def check_keep_warm_max(value) -> int:
    """[app] keep_warm_max_minutes: keep-warm's maximum lifetime, a whole number of minutes from 1 to 480."""
    message = (f"keep_warm_max_minutes must be a whole number of minutes from {KEEP_WARM_MAX_MINUTES_MIN} to "
               f"{KEEP_WARM_MAX_MINUTES_MAX}")
    if isinstance(value, bool):
        raise ValueError(message)
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not KEEP_WARM_MAX_MINUTES_MIN <= minutes <= KEEP_WARM_MAX_MINUTES_MAX:
        raise ValueError(message)
    return minutes
