"""Build the router Lambda's deployment zip: `tlfif_router` + `tlfif_common` + a vendored `redis` client.

    python cloud/lambda/build_zip.py [--output dist/tl-fif-router.zip] [--no-vendor]

`cloud/lambda/` is the zip root: the zip holds `tlfif_router/` and `tlfif_common/` at its top level, so the
handlers are `tlfif_router.handler.handler` (the router) and `tlfif_router.queue_handler.handler` (the lean
profile's in-VPC queue function; same zip). boto3/botocore come with the python3.12 Lambda runtime and are not
packed; `redis` is not in the runtime, so it is installed into the zip with `pip install --target` for
CPython 3.12 on manylinux x86_64 (it is pure Python; the version is the one this environment runs its tests
with). The zip is reproducible: sorted entries, fixed timestamps, no bytecode.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"tlfif_router": ROOT / "cloud" / "lambda" / "tlfif_router",
            "tlfif_common": ROOT / "cloud" / "common" / "tlfif_common"}
VENDORED = ("redis",)
FALLBACK_SPECS = {"redis": "redis>=5.0,<9"}
LAMBDA_PYTHON = "3.12"
HANDLERS = {"router": "tlfif_router.handler.handler", "queue": "tlfif_router.queue_handler.handler"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__", "bin"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def _requirement(name: str) -> str:
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return FALLBACK_SPECS[name]


def vendor(target: Path, python_version: str = LAMBDA_PYTHON) -> list[str]:
    requirements = [_requirement(name) for name in VENDORED]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                    "--target", str(target), "--implementation", "cp", "--python-version", python_version,
                    "--platform", "manylinux2014_x86_64", "--only-binary=:all:", *requirements], check=True)
    return requirements


def _files(staging: Path) -> list[Path]:
    out = []
    for path in staging.rglob("*"):
        relative = path.relative_to(staging)
        if path.is_dir() or SKIP_DIRS.intersection(relative.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        out.append(relative)
    return sorted(out, key=lambda p: p.as_posix())


def build(output: Path, *, vendor_deps: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="tlfif-lambda-") as tmp:
        staging = Path(tmp)
        for name, source in PACKAGES.items():
            shutil.copytree(source, staging / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        requirements = vendor(staging) if vendor_deps else []
        output.parent.mkdir(parents=True, exist_ok=True)
        files = _files(staging)
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for relative in files:
                info = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, (staging / relative).read_bytes())
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return {"zip": str(output), "bytes": output.stat().st_size, "sha256": digest, "files": len(files),
            "vendored": requirements, "handlers": HANDLERS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "tl-fif-router.zip")
    parser.add_argument("--no-vendor", action="store_true",
                        help="skip `pip install --target` of redis (offline checks of the zip layout only)")
    args = parser.parse_args(argv)
    report = build(args.output, vendor_deps=not args.no_vendor)
    print(f"{report['zip']}: {report['bytes']} bytes, {report['files']} files, sha256 {report['sha256']}")
    print(f"vendored: {', '.join(report['vendored']) or 'nothing (--no-vendor)'}")
    for role, name in HANDLERS.items():
        print(f"{role} handler: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
