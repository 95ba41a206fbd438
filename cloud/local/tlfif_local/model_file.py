"""Checks on a GGUF model file before anything starts, and the chat template it needs.

    info = check_model(path, context=2048)     # ModelError naming the problem: missing, not GGUF, too big for RAM
    info.chat_format                            # None: the GGUF carries its own template; else a llama.cpp format

Only the header's key/value section is read: the `gguf` package's reader maps every tensor and array (12 s on the
253 MB test model) where four keys are needed here.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"
# A model file is mapped whole; the engine adds its KV cache, the compute buffers and the Python server itself.
RUNTIME_OVERHEAD_BYTES = 300 * 1024 * 1024
# The chat format per model family, for GGUFs without `tokenizer.chat_template`: llama-cpp-python's built-in names,
# or one `llama_server.TEMPLATES` registers (a family's published template where the built-in differs). The family is
# matched in `general.name`/`general.basename` (then the file name): first hit wins, so the specific name leads.
FAMILY_CHAT_FORMATS = (
    ("tinyllama", "tinyllama"),  # TinyLlama-1.1B-Chat's own Zephyr-style template
    ("zephyr", "zephyr"),
    ("gemma", "gemma"),
    ("mistral", "mistral-instruct"),
    ("mixtral", "mistral-instruct"),
    ("llama-3", "llama-3"),
    ("llama3", "llama-3"),
    ("qwen", "chatml"),
    ("phi-3", "chatml"),
    ("llama-2", "llama-2"),
)
DEFAULT_CHAT_FORMAT = "chatml"

# GGUF value types: struct format of the fixed-size ones; 8 is a string, 9 an array.
_FIXED = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class ModelError(ValueError):
    """The model file cannot be served; the message says why, naming the file."""


@dataclass(frozen=True)
class ModelInfo:
    path: str
    size: int
    name: str
    architecture: str
    has_template: bool
    chat_format: str | None      # None when the GGUF's own template is used
    needed_bytes: int            # file + KV cache at `context` + overhead


def read_metadata(path: str) -> dict:
    """The GGUF header's key/value pairs (arrays are skipped: their value is None). ModelError if not GGUF."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise ModelError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
            version, _tensors, count = struct.unpack("<IQQ", _exact(f, 20))
            if version < 2:
                raise ModelError(f"{path} is GGUF version {version}; llama.cpp reads version 2 and later")
            return {_string(f): _value(f, struct.unpack("<I", _exact(f, 4))[0]) for _ in range(count)}
    except (struct.error, EOFError, UnicodeDecodeError) as err:
        raise ModelError(f"{path} is not a readable GGUF file ({err})") from None


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError("the header ends early")
    return data


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _exact(f, 8))
    return _exact(f, length).decode("utf-8")


def _value(f: BinaryIO, kind: int):
    if kind in _FIXED:
        fmt = _FIXED[kind]
        return struct.unpack(fmt, _exact(f, struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item, n = struct.unpack("<IQ", _exact(f, 12))
        if item in _FIXED:
            f.seek(struct.calcsize(_FIXED[item]) * n, os.SEEK_CUR)
        else:
            for _ in range(n):
                _value(f, item)
        return None
    raise struct.error(f"unknown GGUF value type {kind}")


def chat_format_for(meta: dict, path: str) -> str | None:
    if meta.get("tokenizer.chat_template"):
        return None
    haystack = " ".join(str(meta.get(k) or "") for k in ("general.name", "general.basename")).lower()
    for where in (haystack, os.path.basename(path).lower()):
        for family, chat_format in FAMILY_CHAT_FORMATS:
            if family in where:
                return chat_format
    return DEFAULT_CHAT_FORMAT


def kv_cache_bytes(meta: dict, context: int) -> int:
    """f16 K and V for every layer at `context` tokens (llama.cpp's default cache type)."""
    arch = meta.get("general.architecture", "")

    def key(name, default=0):
        value = meta.get(f"{arch}.{name}")
        return value if isinstance(value, int) else default

    layers, heads = key("block_count"), key("attention.head_count", 1)
    kv_heads = key("attention.head_count_kv", heads)
    head_dim = key("embedding_length") // max(1, heads)
    k_len, v_len = key("attention.key_length", head_dim), key("attention.value_length", head_dim)
    return context * layers * kv_heads * (k_len + v_len) * 2


def available_memory() -> int:
    """MemAvailable from /proc/meminfo (what can be had without swapping), in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_model(path: str, *, context: int, available: int | None = None) -> ModelInfo:
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    meta = read_metadata(path)
    size = os.path.getsize(path)
    needed = size + kv_cache_bytes(meta, context) + RUNTIME_OVERHEAD_BYTES
    free = available_memory() if available is None else available
    if needed > free:
        raise ModelError(f"{path} needs about {needed / 2**30:.1f} GiB with a {context}-token context, but only "
                         f"{free / 2**30:.1f} GiB of memory is free")
    return ModelInfo(path=path, size=size, name=str(meta.get("general.name") or os.path.basename(path)),
                     architecture=str(meta.get("general.architecture", "")),
                     has_template=bool(meta.get("tokenizer.chat_template")),
                     chat_format=chat_format_for(meta, path), needed_bytes=needed)
