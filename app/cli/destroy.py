"""`tl-fif destroy --stack NAME [--region R] [--yes]`: delete a TL-FIF stack and what it holds.

Lists what will be lost (each bucket the stack made with its object count - the responses bucket is the history
of results - and the sessions table), asks for the stack name to be typed again unless --yes, empties the stack's
own buckets (every object version; nothing outside the stack is touched, the artifacts bucket of `tl-fif deploy`
stays), deletes the stack and follows its events until it is gone.

Exit codes: 0 deleted, 1 declined or the deletion failed, 2 usage error or no such stack.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any, Callable

from app.cli import stack_events, stack_resources
from app.cli.aws_clients import Clients, run_stack_command

PROG = "tl-fif destroy"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, metavar="NAME", help="the stack's name")
    parser.add_argument("--region", metavar="R", help="AWS region (default: the AWS CLI's)")
    parser.add_argument("--yes", action="store_true", help="delete without asking")
    return parser


def _object_versions(s3: Any, bucket: str) -> list[dict]:
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            out.append({"Key": item["Key"], "VersionId": item["VersionId"]})
    return out


def empty_bucket(s3: Any, bucket: str) -> int:
    versions = _object_versions(s3, bucket)
    for start in range(0, len(versions), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": versions[start:start + 1000], "Quiet": True})
    return len(versions)


def destroy(args: argparse.Namespace, clients: Clients, *, ask: Callable[[str], str] | None = None,
            out: Callable[[str], None] = print, err: Callable[[str], None] | None = None,
            poll_seconds: float = 5.0) -> int:
    from botocore.exceptions import ClientError

    err = err or (lambda text: print(text, file=sys.stderr))
    ask = ask or input
    cfn, s3 = clients("cloudformation"), clients("s3")
    try:
        stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    except ClientError as error:
        err(f"{PROG}: {error.response.get('Error', {}).get('Message', error)}")
        return 2
    buckets = stack_resources.of_type(cfn, args.stack, "AWS::S3::Bucket")
    tables = stack_resources.of_type(cfn, args.stack, "AWS::DynamoDB::Table")
    out(f"Deleting stack {args.stack} ({stack['StackStatus']}) in {clients.region} loses:")
    for bucket in buckets:
        try:
            count = len(_object_versions(s3, bucket.physical_id))
        except ClientError:
            count = 0  # already gone
        what = " - the history of results" if bucket.logical_id == "ResponsesBucket" else ""
        out(f"  s3://{bucket.physical_id}: {count} object version(s){what}")
    for table in tables:
        out(f"  DynamoDB table {table.physical_id} (who is using which GPU)")
    out("  every other resource of the stack: the GPU node and its volume, the API, the user pool and its users")
    if not args.yes:
        try:
            typed = ask(f"Type the stack name ({args.stack}) to delete it: ").strip()
        except EOFError:
            typed = ""
        if typed != args.stack:
            out("The name does not match; nothing deleted.")
            return 1
    for bucket in buckets:
        try:
            removed = empty_bucket(s3, bucket.physical_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
                continue
            raise
        out(f"Emptied s3://{bucket.physical_id} ({removed} object version(s))")
    top_level = sum(1 for r in stack_resources.walk(cfn, stack["StackId"], depth=3))  # the root's own resources
    since = datetime.now(timezone.utc).replace(microsecond=0)
    cfn.delete_stack(StackName=stack["StackId"])
    status = stack_events.follow(cfn, stack["StackId"], since=since, total=top_level, out=out,
                                 poll_seconds=poll_seconds)
    if status != "DELETE_COMPLETE":
        failure = stack_events.first_failure(cfn, stack["StackId"], since)
        err(f"{PROG}: the deletion ended {status}: {failure or 'no failed resource reported'}")
        return 1
    out(f"Stack {args.stack} is deleted.")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stack_command(PROG, _parser(), argv, destroy)
