"""moto's server on loopback as the local cloud's AWS endpoint, holding the TL-FIF resources.

What the CloudFormation templates create, made here with the same names (`tlfif_common.names`):
the GPU instance (tagged Project/Role as the templates tag it, then stopped), the responses and models buckets,
the SSM parameters, the `ActiveSessions` table. Everything goes through boto3 against the server, as on AWS.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from tlfif_common import names

log = logging.getLogger("tlfif_local.aws")

GPU_INSTANCE_TYPE = names.DEFAULT_GPU_INSTANCE_TYPE
LOCAL_AMI_NAME = "tl-fif-gpu-local"

# Nothing the local cloud starts may ever reach AWS: fake credentials, and every client points at moto.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-cloud",
    "AWS_SECRET_ACCESS_KEY": "local-cloud",
    "AWS_SESSION_TOKEN": "local-cloud",
}


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
    """Starts moto's threaded server on 127.0.0.1 and creates the resources; `stop()` shuts it down."""

    def __init__(self, region: str = names.DEFAULT_REGION, port: int = 0):
        self.region = region
        self.port = port
        self._server = None
        self.resources: AwsResources | None = None

    def start(self) -> AwsResources:
        # The default AMI catalogue costs seconds at start-up and the local cloud registers its own image.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines from moto's server
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        self.resources = self._create_resources(endpoint, DEFAULT_ACCOUNT_ID)
        log.info("[aws] moto server at %s; GPU instance %s (stopped)", endpoint, self.resources.gpu_instance_id)
        return self.resources

    def client(self, service: str):
        import boto3

        assert self.resources is not None
        return boto3.client(service, region_name=self.region, endpoint_url=self.resources.endpoint_url,
                            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"])

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
        reservation = ec2.run_instances(
            ImageId=ami_id, MinCount=1, MaxCount=1, InstanceType=GPU_INSTANCE_TYPE,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        instance_id = reservation["Instances"][0]["InstanceId"]
        ec2.stop_instances(InstanceIds=[instance_id])

        s3 = self.client("s3")
        for bucket in (names.LOCAL_RESPONSES_BUCKET, names.LOCAL_MODELS_BUCKET):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})

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
                self._server.stop()
            finally:
                self._server = None
