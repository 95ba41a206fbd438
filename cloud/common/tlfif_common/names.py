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

# Environment variables: GPU watcher (it also reads ENV_REDIS_URL and ENV_RESPONSES_BUCKET).
ENV_ENGINE = "TLFIF_ENGINE"  # "vllm" | "echo"
ENV_ENGINE_URL = "TLFIF_ENGINE_URL"  # OpenAI-compatible base URL, default http://127.0.0.1:8000/v1
ENV_ENGINE_MODEL = "TLFIF_ENGINE_MODEL"
ENV_ECHO_DELAY_MS = "TLFIF_ECHO_DELAY_MS"
ENV_IMDS_URL = "TLFIF_IMDS_URL"  # default http://169.254.169.254
ENV_MINUTE_SECONDS = "TLFIF_MINUTE_SECONDS"  # length of an idle "minute"; tests shorten it
ENV_DEFAULT_IDLE_MINUTES = "TLFIF_DEFAULT_IDLE_MINUTES"
ENV_LEASE_SECONDS = "TLFIF_LEASE_SECONDS"

# Standard AWS variables every component honours (boto3 reads them itself).
ENV_AWS_REGION = "AWS_REGION"
ENV_AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"

DEFAULT_REGION = "eu-central-1"
DEFAULT_ENGINE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_IMDS_URL = "http://169.254.169.254"
DEFAULT_MODEL = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
BOOT_ETA_SECONDS = 90
