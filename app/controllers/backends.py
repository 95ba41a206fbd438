"""The backend registry (RQL 12): key → class. A third backend is one class + one line in BACKEND_CLASSES."""
from __future__ import annotations

from app.controllers.aws_backend import AwsTinyLlamaClient
from app.controllers.backend_base import BackendClient, BackendContext
from app.controllers.openai_backend import OpenAiApiClient

BACKEND_CLASSES: tuple[type, ...] = (
    AwsTinyLlamaClient,
    OpenAiApiClient,
)
REGISTRY: dict[str, type] = {cls.key: cls for cls in BACKEND_CLASSES}


def labels() -> dict[str, str]:
    """key → dropdown label, in dropdown order (the first is the default)."""
    return {cls.key: cls.label for cls in BACKEND_CLASSES}


def create_all(ctx: BackendContext) -> dict[str, BackendClient]:
    return {key: cls(ctx) for key, cls in REGISTRY.items()}
