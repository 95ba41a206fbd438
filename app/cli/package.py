"""What `aws cloudformation package` does for TL-FIF, with boto3: one artifacts bucket, the templates and the zip.

The root template `cloud/cfn/main.yaml` names its children by path (`TemplateURL: ./network.yaml`) and the
functions their code by path (`Code: ../../dist/tl-fif-router.zip`). `package()` builds the Lambda zip with
cloud/lambda/build_zip.py (or takes one built already), uploads it and every template it reaches, and rewrites those
paths into S3 locations. Keys carry the content's hash, so packaging the same tree twice uploads the same objects
and a second deploy sees no change.
"""
from __future__ import annotations

import hashlib
import importlib.util
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.cli import cfn_yaml

REPO = Path(__file__).resolve().parents[2]
CFN_DIR = REPO / "cloud" / "cfn"
ROOT_TEMPLATE = CFN_DIR / "main.yaml"
BUILD_ZIP = REPO / "cloud" / "lambda" / "build_zip.py"
ARTIFACTS_PREFIX = "tl-fif-artifacts"


@dataclass
class Packaged:
    bucket: str
    template_url: str  # the root template, ready for CreateChangeSet or the console's "Create stack"
    uploaded: list[str] = field(default_factory=list)  # keys, root last
    template: dict = field(default_factory=dict)  # the packaged root template


def artifacts_bucket_name(account_id: str, region: str) -> str:
    return f"{ARTIFACTS_PREFIX}-{account_id}-{region}"


def s3_url(bucket: str, region: str, key: str) -> str:
    """The virtual-hosted URL CloudFormation reads a TemplateURL from."""
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def ensure_bucket(s3: Any, bucket: str, region: str) -> bool:
    """Creates the artifacts bucket if it is missing, private and encrypted either way. True when created."""
    from botocore.exceptions import ClientError

    created = False
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        created = True
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    return created


def build_lambda_zip(output: Path) -> Path:
    """cloud/lambda/build_zip.py's build(), loaded from its file (cloud/lambda is not an importable package)."""
    spec = importlib.util.spec_from_file_location("tlfif_build_zip", BUILD_ZIP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(output)
    return output


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


class _Uploader:
    def __init__(self, s3: Any, bucket: str, region: str, prefix: str, zip_path: Path):
        self.s3, self.bucket, self.region, self.prefix = s3, bucket, region, prefix.strip("/")
        self.zip_path = zip_path
        self.uploaded: list[str] = []
        self._zip_key: str | None = None

    def put(self, name: str, data: bytes) -> str:
        key = f"{self.prefix}/{_digest(data)}-{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ServerSideEncryption="AES256")
        self.uploaded.append(key)
        return key

    def zip_key(self) -> str:
        if self._zip_key is None:
            self._zip_key = self.put(self.zip_path.name, self.zip_path.read_bytes())
        return self._zip_key

    def template(self, path: Path) -> tuple[str, dict]:
        """Uploads the template at `path` after its children; returns (its URL, the rewritten template)."""
        template = cfn_yaml.load(path)
        for resource in (template.get("Resources") or {}).values():
            props = resource.get("Properties") or {}
            if resource.get("Type") == "AWS::CloudFormation::Stack" and _is_local(props.get("TemplateURL")):
                props["TemplateURL"], _child = self.template((path.parent / props["TemplateURL"]).resolve())
            elif resource.get("Type") == "AWS::Lambda::Function" and _is_local(props.get("Code")):
                props["Code"] = {"S3Bucket": self.bucket, "S3Key": self.zip_key()}
        key = self.put(path.with_suffix(".json").name, cfn_yaml.dumps(template).encode())
        return s3_url(self.bucket, self.region, key), template


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith(("https://", "s3://"))


def package(s3: Any, *, bucket: str, region: str, prefix: str, zip_path: Path | None = None,
            root: Path = ROOT_TEMPLATE) -> Packaged:
    """Uploads the Lambda zip (built here unless given) and every template reachable from `root`."""
    with tempfile.TemporaryDirectory(prefix="tlfif-package-") as tmp:
        if zip_path is None:
            zip_path = build_lambda_zip(Path(tmp) / "tl-fif-router.zip")
        uploader = _Uploader(s3, bucket, region, prefix, zip_path)
        url, template = uploader.template(root)
    return Packaged(bucket=bucket, template_url=url, uploaded=uploader.uploaded, template=template)
