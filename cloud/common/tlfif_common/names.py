"""The one place for TL-FIF's resource names, tags, SSM paths and environment variable names.

The CloudFormation templates, the router Lambda, the GPU watcher, the local cloud and the tests all read these
names from here; nothing else spells them out.
"""

PROJECT = "tl-fif"

# Tags the templates put on the GPU instance; the router's IAM conditions match on them.
TAG_PROJECT_KEY = "Project"
TAG_PROJECT_VALUE = PROJECT
TAG_ROLE_KEY = "Role"
TAG_ROLE_GPU = "gpu"

# SSM parameters.
SSM_PREFIX = "/tl-fif"
SSM_READY_PREFIX = f"{SSM_PREFIX}/ready/"
SSM_LATEST_AMI_ID = f"{SSM_PREFIX}/latest_ami_id"
SSM_LAMBDA_PROD_VERSION = f"{SSM_PREFIX}/lambda_prod_version"
# Cost (issue "Cost"): the cost reporter writes the month-to-date spend here as JSON (as_of, month_to_date_eur,
# daily series) so GET /cost reads it with one GetParameter instead of a $0.01 Cost Explorer request; the
# BudgetKiller writes the month and time of its last stop to SSM_BUDGET_STOP.
SSM_COST_MONTH_TO_DATE = f"{SSM_PREFIX}/cost/month_to_date"
SSM_BUDGET_STOP = f"{SSM_PREFIX}/cost/budget_stop"


def ssm_ready_param(instance_id: str) -> str:
    """The SSM parameter the watcher writes once its engine answers (RQL 5.3)."""
    return f"{SSM_READY_PREFIX}{instance_id}"


# DynamoDB (RQL 3.4).
SESSIONS_TABLE = "ActiveSessions"
SESSIONS_KEY = "user"

# CloudWatch.
METRICS_NAMESPACE = "TL-FIF"
METRIC_REQUESTS = "Requests"
METRIC_COLD_STARTS = "ColdStarts"
METRIC_ERRORS = "Errors"
METRIC_MANUAL_STOPS = "ManualStops"
METRIC_JOB_LATENCY = "JobLatencyMs"
METRIC_JOB_TOKENS = "JobTokens"
METRIC_TTFT = "TimeToFirstTokenMs"
METRIC_GPU_UTIL = "GpuUtilization"
METRIC_GPU_VRAM = "GpuMemoryUtilization"
METRIC_IDLE_STOPS = "IdleStops"
METRIC_CURRENT_SPEND_EUR = "CurrentSpendEUR"  # cost reporter: month-to-date spend in EUR (RQL 6)
METRIC_BUDGET_STOPS = "BudgetStops"  # BudgetKiller: the GPU was stopped by an AWS Budgets notification
# The watcher's pulse for the idle-miss safety net (ops.yaml WatcherOverdueAlarm): seconds to its own stop deadline,
# once a minute, with the dimension InstanceId (tlfif_watcher.deadline_metric).
METRIC_WATCHER_DEADLINE = "WatcherDeadlineSeconds"

# Default bucket names for the local cloud (the templates let CloudFormation generate physical names).
LOCAL_RESPONSES_BUCKET = "tl-fif-responses"
LOCAL_MODELS_BUCKET = "tl-fif-models"
LOG_GROUP_API = "/apigw/tl-fif"

# Environment variables: router Lambda.
ENV_REDIS_URL = "TLFIF_REDIS_URL"
ENV_RESPONSES_BUCKET = "TLFIF_RESPONSES_BUCKET"
ENV_MODELS_BUCKET = "TLFIF_MODELS_BUCKET"
ENV_GPU_INSTANCE_ID = "TLFIF_GPU_INSTANCE_ID"
ENV_JWT_ISSUER = "TLFIF_JWT_ISSUER"
ENV_JWT_AUDIENCE = "TLFIF_JWT_AUDIENCE"
ENV_SESSIONS_TABLE = "TLFIF_SESSIONS_TABLE"
ENV_RATE_LIMIT_RPS = "TLFIF_RATE_LIMIT_RPS"
ENV_BOOT_ETA_SECONDS = "TLFIF_BOOT_ETA_SECONDS"
# Lean profile: name or ARN of the in-VPC queue function (`tlfif_router.queue_handler.handler`). When set, the router
# reaches Redis only through it (it runs outside the VPC); when unset it talks to ENV_REDIS_URL directly.
ENV_QUEUE_FUNCTION = "TLFIF_QUEUE_FUNCTION"

# Environment variables: GPU watcher (it also reads ENV_REDIS_URL and ENV_RESPONSES_BUCKET).
ENV_ENGINE = "TLFIF_ENGINE"  # "vllm" | "llama.cpp" | "echo"
ENV_ENGINE_URL = "TLFIF_ENGINE_URL"  # OpenAI-compatible base URL, default http://127.0.0.1:8000/v1
ENV_ENGINE_MODEL = "TLFIF_ENGINE_MODEL"
ENV_ENGINE_CONTEXT = "TLFIF_ENGINE_CONTEXT"  # context window in tokens, when the server does not list it
# Local cloud: the GGUF model its GPU node serves (`tl-fif cloud up --model` wins; then this; then ~/.tl-fif.ini).
ENV_LOCAL_MODEL = "TLFIF_LOCAL_MODEL"
ENV_ECHO_DELAY_MS = "TLFIF_ECHO_DELAY_MS"
ENV_IMDS_URL = "TLFIF_IMDS_URL"  # default http://169.254.169.254
ENV_MINUTE_SECONDS = "TLFIF_MINUTE_SECONDS"  # length of an idle "minute"; tests shorten it
ENV_DEFAULT_IDLE_MINUTES = "TLFIF_DEFAULT_IDLE_MINUTES"
ENV_LEASE_SECONDS = "TLFIF_LEASE_SECONDS"
ENV_ENGINE_API_KEY = "TLFIF_ENGINE_API_KEY"  # only if vLLM was started with --api-key
ENV_ADAPTER_DIR = "TLFIF_ADAPTER_DIR"  # local cache of LoRA adapters fetched from the models bucket
ENV_METRICS_NAMESPACE = "TLFIF_METRICS_NAMESPACE"  # default METRICS_NAMESPACE; the DR test's node has its own

# Standard AWS variables every component honours (boto3 reads AWS_ENDPOINT_URL and AWS_DEFAULT_REGION itself;
# the components read AWS_REGION, which Lambda sets, and pass it on).
ENV_AWS_REGION = "AWS_REGION"
ENV_AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"

DEFAULT_REGION = "eu-central-1"
DEFAULT_ENGINE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_IMDS_URL = "http://169.254.169.254"
DEFAULT_MODEL = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
ECHO_MODEL = "echo"  # the `model` a result of the echo engine names (no model loaded)
BOOT_ETA_SECONDS = 90
# The templates' default GPU instance type (cloud/cfn gpu.yaml, main.yaml). The app prices an answer's GPU seconds
# with the deployed type's price from GET /cost (gpu_hourly_eur) and falls back to this type's until /cost answered.
DEFAULT_GPU_INSTANCE_TYPE = "g4dn.xlarge"
# Cost reporter: every Cost Explorer request costs $0.01, so the hourly poll of RQL 6 alone would be $7.30/month;
# the templates schedule it every COST_POLL_HOURS hours by default (~$0.30/month): Cost Explorer itself refreshes
# the figures at least once every 24 hours, so a more frequent poll mostly reads the same number again.
COST_POLL_HOURS = 24
# Environment variable (cost reporter, router): EUR per USD, overriding the rate in tlfif_common/prices.json.
ENV_USD_TO_EUR = "TLFIF_USD_TO_EUR"
# The stack's AWS Budgets limit (USD, as the Budget resource holds it); GET /cost reports it in EUR as budget_eur.
ENV_MONTHLY_BUDGET_USD = "TLFIF_MONTHLY_BUDGET_USD"

# API Gateway stage (the API template and the local cloud's gateway emulation): default route throttling, and the
# JSON access-log format for LOG_GROUP_API — keys are the fields of each line, values the $context variables API
# Gateway substitutes (the template serialises this dict as the stage's AccessLogSettings.Format).
API_THROTTLE_RATE = 50  # the stage's one bucket; the per-user limit is tlfif_common.ratelimit
API_THROTTLE_BURST = 100
API_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationErrorMessage": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.claims.sub",
    "userAgent": "$context.identity.userAgent",
}

# GpuMode `scale` (cloud/cfn/scale.yaml): the GPU nodes are an Auto Scaling group instead of one instance. The router
# reads the group's name from ENV_GPU_GROUP (empty or unset: one instance, ENV_GPU_INSTANCE_ID) and publishes the
# number of jobs waiting for a GPU as METRIC_PENDING_JOBS; the group's scale-out alarm reads that metric.
ENV_GPU_GROUP = "TLFIF_GPU_GROUP"
METRIC_PENDING_JOBS = "PendingJobs"

# Cold-start ETA: each watcher records how long its node took from the router's start to "ready" (whole seconds, a
# JSON list of the newest BOOT_SAMPLES); /ping and /infer answer their median, BOOT_ETA_SECONDS until one exists.
SSM_BOOT_SECONDS = f"{SSM_PREFIX}/boot_seconds"
BOOT_SAMPLES = 9
# The watcher's GpuMode (`single` | `scale`, the env file cloud-init writes): a scale node leaves its group when idle
# (tlfif_watcher.group_exit) where a single node stops.
ENV_GPU_MODE = "TLFIF_GPU_MODE"
GPU_MODE_SINGLE = "single"
GPU_MODE_SCALE = "scale"
GPU_MODES = (GPU_MODE_SINGLE, GPU_MODE_SCALE)  # the templates' GpuMode AllowedValues
