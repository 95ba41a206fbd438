"""LoRA adapters (RQL 5.8): an `adapter_uri` `s3://<models bucket>/<prefix>` names a directory of adapter files
(adapter_config.json, adapter_model.safetensors, ...). vLLM loads adapters from a local path, so the watcher first
copies the directory into a local cache; each URI is fetched once and gets a stable `lora_name`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common.jobs import parse_s3_uri

from .base import AdapterError

COMPLETE_MARK = ".tlfif-complete"


def lora_name(uri: str) -> str:
    """A stable, vLLM-safe model name for an adapter URI."""
    return "lora-" + hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]


class AdapterFetcher:
    def __init__(self, s3, cache_dir: str, allowed_bucket: str | None = None):
        self.s3 = s3
        self.cache_dir = cache_dir
        self.allowed_bucket = allowed_bucket

    def fetch(self, uri: str) -> str:
        """Copy the adapter directory at `uri` into the cache (once); return the local directory."""
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as err:
            raise AdapterError(f"bad adapter_uri {uri!r}: {err}") from None
        if self.allowed_bucket and bucket != self.allowed_bucket:
            raise AdapterError(f"adapter_uri {uri} is outside the models bucket")
        dest = os.path.join(self.cache_dir, lora_name(uri))
        if os.path.exists(os.path.join(dest, COMPLETE_MARK)):
            return dest
        prefix = key.rstrip("/") + "/"
        os.makedirs(self.cache_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".fetch-", dir=self.cache_dir)
        try:
            count = 0
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(prefix):]
                    if not rel or rel.endswith("/"):
                        continue
                    parts = rel.split("/")
                    if any(p in ("", ".", "..") for p in parts):
                        raise AdapterError(f"unsafe file name {obj['Key']!r} in adapter {uri}")
                    target = os.path.join(staging, *parts)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    self.s3.download_file(bucket, obj["Key"], target)
                    count += 1
            if count == 0:
                raise AdapterError(f"no adapter files under {uri}")
            open(os.path.join(staging, COMPLETE_MARK), "w").close()
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(staging, dest)
            return dest
        except (BotoCoreError, ClientError) as err:
            raise AdapterError(f"cannot fetch adapter {uri}: {err}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
