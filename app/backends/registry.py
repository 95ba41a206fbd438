"""The backend registry: key → class. A third backend is one class + one line in BACKEND_CLASSES."""
from __future__ import annotations

from app.backends.aws import AwsTinyLlamaClient
from app.backends.base import Backend, BackendContext
from app.backends.openai import OpenAiApiClient

BACKEND_CLASSES: tuple[type[Backend], ...] = (
    AwsTinyLlamaClient,
    OpenAiApiClient,
)
REGISTRY: dict[str, type[Backend]] = {cls.key: cls for cls in BACKEND_CLASSES}


def labels() -> dict[str, str]:
    """key → dropdown label, in dropdown order (the first is the default)."""
    return {cls.key: cls.label for cls in BACKEND_CLASSES}


def create_all(ctx: BackendContext) -> dict[str, Backend]:
    return {key: cls(ctx) for key, cls in REGISTRY.items()}
