#!/usr/bin/env bash
# TL-FIF image, step 3: on a GPU build instance, start the baked vLLM exactly as the node will (run_vllm.service)
# and ask it for a few tokens: proves the pinned vLLM loads the weights on this GPU with --dtype half.
set -euo pipefail
if [ "${SMOKE_TEST:-true}" != true ] || ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
  echo "smoke test skipped (SMOKE_TEST=${SMOKE_TEST:-} or no GPU on this build instance)"
  exit 0
fi
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv
started=$(date +%s)
systemctl start run_vllm.service
for _ in $(seq 1 120); do
  if curl -sf http://127.0.0.1:8000/health >/dev/null; then break; fi
  sleep 5
done
echo "vLLM answered /health after $(( $(date +%s) - started )) s"
curl -sf http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \
  -d "{\"model\": \"${SERVED_MODEL_NAME}\", \"prompt\": \"The capital of France is\", \"max_tokens\": 8}" \
  | /opt/tl-fif/venv/bin/python -c 'import json,sys; t=json.load(sys.stdin)["choices"][0]["text"]; assert t.strip(); print("smoke answer:", t)'
systemctl stop run_vllm.service
