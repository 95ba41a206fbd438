"""moto's server on loopback as the local cloud's AWS endpoint, holding the TL-FIF resources.

What the CloudFormation templates create, made here with the same names (`tlfif_common.names`):
the GPU instance (tagged Project/Role as the templates tag it, then stopped), the responses and models buckets,
the SSM parameters, the `ActiveSessions` table. Everything goes through boto3 against the server, as on AWS.

moto's server trusts everyone and allows every origin, so it sits behind `MotoEdge`: only its own loopback
`Host`, no browser (no `Origin`, no preflight, no form POST upload), no `/moto-api`, and only the access key made
for this run (`local_credentials`), which the local cloud hands to its own processes through the environment.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import string
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs

from tlfif_common import names

from .wsgi_server import allowed_hosts

log = logging.getLogger("tlfif_local.aws")

GPU_INSTANCE_TYPE = names.DEFAULT_GPU_INSTANCE_TYPE
LOCAL_AMI_NAME = "tl-fif-gpu-local"

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def local_credentials() -> dict[str, str]:
    """This run's credentials: never valid on AWS (every client points at moto), and the key moto's edge checks."""
    key = "LOCAL" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(15))
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
            "AWS_SESSION_TOKEN": secrets.token_urlsafe(30)}


def request_access_key(environ: dict) -> str | None:
    """The access key a SigV4 request names (Authorization header, or X-Amz-Credential of a presigned URL)."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return found.group(1)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    return credential.split("/", 1)[0] or None


class MotoEdge:
    """WSGI middleware in front of moto's app: refuse what only a web page or another local user would send."""

    def __init__(self, app, *, hosts: frozenset[str], access_key: str):
        self.app = app
        self.hosts = hosts
        self.access_key = access_key

    def refusal(self, environ: dict) -> str | None:
        if environ.get("HTTP_HOST", "").lower() not in self.hosts:
            return "unknown Host: this endpoint answers only its loopback address"
        if "HTTP_ORIGIN" in environ or environ.get("REQUEST_METHOD") == "OPTIONS":
            return "browser requests (Origin, CORS preflight) are not accepted"
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return "moto's control API is disabled"
        if environ.get("CONTENT_TYPE", "").lower().startswith("multipart/form-data"):
            return "form POST uploads are not accepted"
        key = request_access_key(environ)
        if key is None or not secrets.compare_digest(key.encode(), self.access_key.encode()):
            return "unknown access key: use the credentials of this local cloud"
        return None

    def __call__(self, environ, start_response):
        problem = self.refusal(environ)
        if problem is None:
            return self.app(environ, start_response)
        log.warning("[aws] refused %s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), problem)
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                f"<Message>{problem}</Message></Error>").encode()
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]


@dataclass
class AwsResources:
    endpoint_url: str
    region: str
    account_id: str
    gpu_instance_id: str
    ami_id: str
    responses_bucket: str = names.LOCAL_RESPONSES_BUCKET
    models_bucket: str = names.LOCAL_MODELS_BUCKET
    sessions_table: str = names.SESSIONS_TABLE


class AwsStack:
    """Starts moto's server (behind `MotoEdge`) on 127.0.0.1 and creates the resources; `stop()` shuts it down."""

    def __init__(self, credentials: dict[str, str], region: str = names.DEFAULT_REGION, port: int = 0):
        self.credentials = credentials
        self.region = region
        self.port = port
        self._server = None
        self._thread: threading.Thread | None = None
        self.resources: AwsResources | None = None

    def start(self) -> AwsResources:
        # The default AMI catalogue costs seconds at start-up and the local cloud registers its own image.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines from moto's server
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.moto_server import werkzeug_app
        from werkzeug.serving import make_server

        werkzeug_app.DISABLE_GLOBAL_CORS = True  # moto reads it per app it creates: no Access-Control-* answers
        dispatcher = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        edge = MotoEdge(dispatcher, hosts=frozenset(), access_key=self.credentials["AWS_ACCESS_KEY_ID"])
        self._server = make_server("127.0.0.1", self.port, edge, threaded=True,
                                   request_handler=werkzeug_app.MotoRequestHandler)
        self._server.daemon_threads = True
        port = self._server.server_port
        edge.hosts = allowed_hosts(port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="moto", daemon=True)
        self._thread.start()
        endpoint = f"http://127.0.0.1:{port}"
        self.resources = self._create_resources(endpoint, DEFAULT_ACCOUNT_ID)
        log.info("[aws] moto server at %s; GPU instance %s (stopped)", endpoint, self.resources.gpu_instance_id)
        return self.resources

    def client(self, service: str):
        import boto3

        assert self.resources is not None
        return boto3.client(service, region_name=self.region, endpoint_url=self.resources.endpoint_url,
                            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=self.credentials["AWS_SESSION_TOKEN"])

    def _create_resources(self, endpoint: str, account_id: str) -> AwsResources:
        self.resources = AwsResources(endpoint_url=endpoint, region=self.region, account_id=account_id,
                                      gpu_instance_id="", ami_id="")
        ec2 = self.client("ec2")
        ami_id = ec2.register_image(Name=LOCAL_AMI_NAME, RootDeviceName="/dev/sda1", Architecture="x86_64",
                                    Description="TL-FIF GPU image (local cloud stand-in)")["ImageId"]
        tags = [
            {"Key": "Name", "Value": f"{names.PROJECT}-gpu"},
            {"Key": names.TAG_PROJECT_KEY, "Value": names.TAG_PROJECT_VALUE},
            {"Key": names.TAG_ROLE_KEY, "Value": names.TAG_ROLE_GPU},
        ]
        # As gpu.yaml builds the node: a launch template that requires IMDSv2, an encrypted root volume, a
        # security group without ingress (the acceptance checks read these from moto as they do from AWS).
        group_id = ec2.create_security_group(GroupName=f"{names.PROJECT}-gpu",
                                             Description="TL-FIF GPU node: no ingress")["GroupId"]
        volume = {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True}}
        ec2.create_launch_template(
            LaunchTemplateName=f"{names.PROJECT}-gpu",
            LaunchTemplateData={"ImageId": ami_id, "InstanceType": GPU_INSTANCE_TYPE,
                                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
                                "BlockDeviceMappings": [volume], "SecurityGroupIds": [group_id]},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": tags}])
        reservation = ec2.run_instances(
            ImageId=ami_id, MinCount=1, MaxCount=1, InstanceType=GPU_INSTANCE_TYPE, SecurityGroupIds=[group_id],
            BlockDeviceMappings=[volume], MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        instance_id = reservation["Instances"][0]["InstanceId"]
        ec2.stop_instances(InstanceIds=[instance_id])

        s3 = self.client("s3")
        for bucket in (names.LOCAL_RESPONSES_BUCKET, names.LOCAL_MODELS_BUCKET):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})

        ssm = self.client("ssm")
        ssm.put_parameter(Name=names.SSM_LATEST_AMI_ID, Value=ami_id, Type="String", Overwrite=True)
        ssm.put_parameter(Name=names.SSM_LAMBDA_PROD_VERSION, Value="local", Type="String", Overwrite=True)

        self.client("dynamodb").create_table(
            TableName=names.SESSIONS_TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": names.SESSIONS_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": names.SESSIONS_KEY, "KeyType": "HASH"}])

        self.resources.gpu_instance_id = instance_id
        self.resources.ami_id = ami_id
        return self.resources

    def moto_instance(self):
        """moto's own object for the GPU instance (same process): the GPU node emulator hooks its start/stop."""
        from moto.ec2.models import ec2_backends

        assert self.resources is not None
        backend = ec2_backends[self.resources.account_id][self.region]
        return backend.get_instance(self.resources.gpu_instance_id)

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.shutdown()
                self._server.server_close()
            finally:
                self._server = None
