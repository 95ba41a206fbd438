#!/usr/bin/env bash
# TL-FIF image, step 2: bake the model weights into the image (never downloaded at boot).
#   weights_url = hf://ORG/NAME[@REVISION]      a Hugging Face snapshot (safetensors, config, tokenizer)
#               | https://HOST/PATH.tar.gz      a tarball of such a directory
#               | s3://BUCKET/KEY.tar.gz        the same in S3 (the build instance's role reads it)
# weights_sha256 (optional) checks a tarball.
set -euxo pipefail
: "${WEIGHTS_URL:?}"
DEST=/opt/tl-fif/models/tinyllama
rm -rf "$DEST" && mkdir -p "$DEST"
tmp=$(mktemp -d)

case "$WEIGHTS_URL" in
  hf://*)
    repo=${WEIGHTS_URL#hf://}
    revision=main
    if [[ $repo == *@* ]]; then revision=${repo#*@}; repo=${repo%@*}; fi
    /opt/vllm/venv/bin/python - "$repo" "$revision" "$DEST" <<'PY'
import sys
from huggingface_hub import snapshot_download
repo, revision, dest = sys.argv[1:4]
snapshot_download(repo_id=repo, revision=revision, local_dir=dest,
                  allow_patterns=["*.safetensors", "*.json", "tokenizer.model", "*.txt"])
PY
    ;;
  https://*)
    curl -fsSL --retry 3 -o "$tmp/weights.tar.gz" "$WEIGHTS_URL"
    ;;
  s3://*)
    /opt/tl-fif/venv/bin/python - "$WEIGHTS_URL" "$tmp/weights.tar.gz" <<'PY'
import sys
import boto3
bucket, _, key = sys.argv[1][len("s3://"):].partition("/")
boto3.client("s3").download_file(bucket, key, sys.argv[2])
PY
    ;;
  *)
    echo "weights_url must be hf://, https:// or s3://, got $WEIGHTS_URL" >&2
    exit 2
    ;;
esac

if [ -f "$tmp/weights.tar.gz" ]; then
  if [ -n "${WEIGHTS_SHA256:-}" ]; then echo "$WEIGHTS_SHA256  $tmp/weights.tar.gz" | sha256sum -c -; fi
  tar -xzf "$tmp/weights.tar.gz" -C "$DEST" --strip-components="$(tar -tzf "$tmp/weights.tar.gz" | head -1 | grep -c /)"
fi
rm -rf "$tmp" "$DEST/.cache"

test -f "$DEST/config.json"
ls "$DEST"/*.safetensors >/dev/null
chown -R root:root "$DEST" && chmod -R a+rX,go-w "$DEST"
du -sh "$DEST"
