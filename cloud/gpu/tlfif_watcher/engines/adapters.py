"""LoRA adapters: an `adapter_uri` `s3://<models bucket>/adapters/<name>` names a directory of adapter files
(adapter_config.json, adapter_model.safetensors, ...). vLLM loads adapters from a local path, so the watcher first
copies the directory into a local cache; each adapter is fetched once, keyed by its normalised URI (one spelling,
one entry), and gets a stable `lora_name`. A directory larger than MAX_ADAPTER_BYTES or MAX_ADAPTER_FILES files is
refused before anything is downloaded (a LoRA of a 1.1B model is tens of MB): the GPU's disk is not a free store.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common.jobs import normalise_adapter_uri, parse_s3_uri

from .base import AdapterError

COMPLETE_MARK = ".tlfif-complete"
MAX_ADAPTER_BYTES = 256 * 1024 * 1024
MAX_ADAPTER_FILES = 64


def lora_name(uri: str) -> str:
    """A stable, vLLM-safe model name for an adapter URI."""
    return "lora-" + hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]


class AdapterFetcher:
    def __init__(self, s3, cache_dir: str, allowed_bucket: str | None = None, max_bytes: int = MAX_ADAPTER_BYTES):
        self.s3 = s3
        self.cache_dir = cache_dir
        self.allowed_bucket = allowed_bucket
        self.max_bytes = max_bytes

    def fetch(self, uri: str) -> str:
        """Copy the adapter directory at `uri` into the cache (once); return the local directory."""
        try:
            bucket, _ = parse_s3_uri(uri)
            uri = normalise_adapter_uri(uri, self.allowed_bucket or bucket)
            bucket, key = parse_s3_uri(uri)
        except ValueError as err:
            raise AdapterError(f"bad adapter_uri {uri!r}: {err}") from None
        dest = os.path.join(self.cache_dir, lora_name(uri))
        if os.path.exists(os.path.join(dest, COMPLETE_MARK)):
            return dest
        prefix = key.rstrip("/") + "/"
        os.makedirs(self.cache_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".fetch-", dir=self.cache_dir)
        try:
            files = self._listing(bucket, prefix, uri)
            for obj_key, parts in files:
                target = os.path.join(staging, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.s3.download_file(bucket, obj_key, target)
            if sum(os.path.getsize(os.path.join(staging, *parts)) for _, parts in files) > self.max_bytes:
                raise AdapterError(f"adapter {uri} grew past {self.max_bytes} bytes while it was fetched")
            open(os.path.join(staging, COMPLETE_MARK), "w").close()
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(staging, dest)
            return dest
        except (BotoCoreError, ClientError) as err:
            raise AdapterError(f"cannot fetch adapter {uri}: {err}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _listing(self, bucket: str, prefix: str, uri: str) -> list[tuple[str, list[str]]]:
        """(key, relative path parts) of every file of the adapter; AdapterError when it is empty, unsafe or
        larger than the caps."""
        files: list[tuple[str, list[str]]] = []
        total = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix):]
                if not rel or rel.endswith("/"):
                    continue
                parts = rel.split("/")
                if any(p in ("", ".", "..") for p in parts):
                    raise AdapterError(f"unsafe file name {obj['Key']!r} in adapter {uri}")
                files.append((obj["Key"], parts))
                total += int(obj.get("Size") or 0)
                if total > self.max_bytes or len(files) > MAX_ADAPTER_FILES:
                    raise AdapterError(f"adapter {uri} is larger than {self.max_bytes} bytes or "
                                       f"{MAX_ADAPTER_FILES} files")
        if not files:
            raise AdapterError(f"no adapter files under {uri}")
        return files
