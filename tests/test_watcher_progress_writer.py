"""Progress snapshots are written off the generation loop, newest only, and never after the final result."""
from __future__ import annotations

import json

from support.watcher_harness import BUCKET, make_bucket, wait_for

from tlfif_common.api import STATUS_DONE, STATUS_RUNNING, Result
from tlfif_watcher.result_store import ProgressWriter, ResultStore


def versions_oldest_first(s3, key: str) -> list[dict]:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]  # S3 lists the newest first
    assert listed[0]["IsLatest"]
    listed.reverse()
    bodies = []
    for version in listed:
        body = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])["Body"].read()
        bodies.append(json.loads(body))
    return bodies


def test_snapshots_then_final_and_nothing_after_it(moto_clients):
    s3 = moto_clients("s3")
    make_bucket(s3)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    store = ResultStore(s3, BUCKET)
    where = store.location("job-1")
    writer = ProgressWriter(store, where)
    writer.submit(Result("job-1", STATUS_RUNNING, text="", tokens=0))
    wait_for(lambda: s3.list_object_versions(Bucket=BUCKET, Prefix=where[1]).get("Versions"), what="a first write")
    for n in range(1, 30):
        writer.submit(Result("job-1", STATUS_RUNNING, text="x" * n, tokens=n))
    writer.close()
    writer.submit(Result("job-1", STATUS_RUNNING, text="late", tokens=99))  # ignored
    assert store.put_final(where, Result("job-1", STATUS_DONE, text="x" * 30, tokens=30))

    docs = versions_oldest_first(s3, where[1])
    assert docs[-1]["status"] == "done" and all(d["status"] == "running" for d in docs[:-1])
    lengths = [len(d["text"]) for d in docs[:-1]]
    # newest only: snapshots may be skipped, never reordered
    assert lengths[0] == 0 and len(lengths) <= 30 and lengths == sorted(set(lengths))


def test_a_writer_that_never_got_a_snapshot_starts_no_thread(moto_clients):
    s3 = moto_clients("s3")
    make_bucket(s3)
    writer = ProgressWriter(ResultStore(s3, BUCKET), ("b", "k"))
    writer.close()
    assert writer._thread is None
