"""Validate and synthesise with ParallelCluster's own code; runs INSIDE the pcluster venv.

Usage: <pcluster venv>/bin/python worker.py REQUEST.json RESPONSE.json
       <pcluster venv>/bin/python worker.py --serve SOCKET IDLE_SECONDS MAX_REQUESTS

The toolkit (pwbcluster.pcluster.offline) writes the request and reads the response;
pcluster, CDK and jsii may print what they like on stdout/stderr. Standalone: imports
pcluster, moto and boto3, never pwbcluster.

Request: {region, account_id, endpoint_url (a moto server; otherwise moto's in-process
mock), jobs: [{kind ("cluster" | "image"), config, name, validate, synthesise, out_dir,
suppress (validator class names), standins, public_subnets, instance_types, clock (an
ISO 8601 instant pcluster's clock reads while it synthesises, or null for the real one)}]}.
Response: {results: [{failures: [{level, validator, message, path}], files, timings,
mapping, placeholders, error}]}, one per job.

The second form is the warm worker (worker_serve.py): the same requests, one after
another over a Unix socket, in a process that paid the imports once.

Two phases: every job is validated first; templates are synthesised only when no job
has an error (a plan with an invalid config stops anyway, and synthesis is the slow part).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("pwbcluster.worker")


WELL_FORMED_ID = re.compile(r"^(subnet|sg|ami|vpc)-([0-9a-f]{8}|[0-9a-f]{17})$")
ID_PREFIX = re.compile(r"^(subnet|sg|ami|vpc)-")


def display_id(value: str) -> str:
    """How a config value appears in the written templates.

    Planned placeholders such as ``sg-planned0000000001`` are not well-formed ids, and
    cfn-lint rightly rejects them; the templates carry a fixed well-formed id derived
    from the placeholder instead (the same on every run), and placeholders.json says
    which placeholder each stands for. ARNs and well-formed ids stay as they are.
    """
    match = ID_PREFIX.match(value)
    if match is None or WELL_FORMED_ID.match(value):
        return value
    return f"{match.group(1)}-{hashlib.sha256(value.encode()).hexdigest()[:17]}"


def display_ids(mapping: dict[str, str]) -> dict[str, str]:
    """moto's id -> the id written to the templates, for every stand-in."""
    return {moto: display_id(original) for original, moto in mapping.items()}


def write_json(path: Path, body: Any, mapping: dict[str, str]) -> Path:
    from worker_standins import substitute_text

    text = body if isinstance(body, str) else json.dumps(body, indent=1, sort_keys=True)
    text = substitute_text(text, mapping)
    if not isinstance(body, str):
        # Sorted after the ids are replaced: a key naming one (an asset's parameters) sorts
        # by the id written, not by moto's.
        text = json.dumps(json.loads(text), indent=1, sort_keys=True)
    path.write_text(text)
    return path


@contextmanager
def pinned_clock(instant: str | None) -> Iterator[None]:
    """pcluster's cluster stack reads the clock twice (cluster_stack.py, ClusterCdkStack:
    the log group's minute suffix and the head node's wait condition ids, to the second);
    with ``instant`` it reads that instead, so the same config gives the same bytes."""
    if not instant:
        yield
        return
    import pcluster.templates.cluster_stack as cluster_stack

    real = cluster_stack.datetime
    fixed = real.fromisoformat(instant)
    if fixed.tzinfo is None:
        raise ValueError(f"clock {instant!r}: give an instant with its offset")

    class Pinned(real):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return fixed.astimezone(tz) if tz is not None else fixed.replace(tzinfo=None)

    cluster_stack.datetime = Pinned
    try:
        yield
    finally:
        cluster_stack.datetime = real


def synthesise_cluster(request: dict[str, Any], config: Any, mapping: dict[str, str]) -> list[str]:
    from pcluster.config.cluster_config import Tag
    from pcluster.constants import PCLUSTER_CLUSTER_NAME_TAG, PCLUSTER_VERSION_TAG
    from pcluster.templates.cdk_builder import CDKTemplateBuilder
    from pcluster.utils import get_installed_version

    name = request["name"]
    bucket = _bucket(request, name)
    # As pcluster create-cluster does (Cluster._add_tags) before it builds the template.
    added = {PCLUSTER_CLUSTER_NAME_TAG: name, PCLUSTER_VERSION_TAG: get_installed_version()}
    config.tags = [t for t in (config.tags or []) if t.key not in added]
    config.tags += [Tag(key=k, value=v) for k, v in added.items()]
    with pinned_clock(request.get("clock")):
        template, assets = CDKTemplateBuilder().build_cluster_template(
            cluster_config=config, bucket=bucket, stack_name=name
        )
    out = Path(request["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    reverse = display_ids(mapping)
    root = json.loads(template) if isinstance(template, str) else template
    nested_files, renamed = [], {}
    for asset in assets or []:
        nested = nested_stack_name(root, asset["s3_bucket_parameter"]["key"])
        path = write_json(out / f"{name}-{nested}.json", asset["content"], reverse)
        nested_files.append(path)
        renamed.update(asset_renames(asset, path.read_bytes()))
    files = [write_json(out / f"{name}.json", root, {**reverse, **renamed}), *nested_files]
    return [str(f) for f in files]


ASSET_PARAMETER = re.compile(
    r"^AssetParameters(?P<hash>[0-9a-f]{64})(?P<kind>[A-Za-z0-9]+?)[0-9A-F]{8}$"
)


def cdk_parameter_id(asset_hash: str, kind: str) -> str:
    """The logical id CDK gives an asset's parameter: the path's parts, then the first 8 hex
    digits of the md5 of the path (makeUniqueId in aws-cdk core's uniqueid.ts)."""
    path_hash = hashlib.md5(
        f"AssetParameters/{asset_hash}/{kind}".encode(), usedforsecurity=False
    ).hexdigest()
    return f"AssetParameters{asset_hash}{kind}{path_hash[:8].upper()}"


def asset_renames(asset: dict[str, Any], written: bytes) -> dict[str, str]:
    """CDK names a nested template's parameters in the root after the hash of the template it
    synthesised, which holds moto's ids for the stand-ins (random, and drawn in a different
    order by a warm worker than by a fresh one). As the template is written with the planned
    ids instead, the root names it by the hash of what was written (sha256), with the
    parameter ids CDK would derive from that hash: the same config, the same root."""
    keys = [
        asset[p]["key"]
        for p in ("s3_bucket_parameter", "s3_object_key_parameter", "hash_parameter")
    ]
    matches = [ASSET_PARAMETER.match(key) for key in keys]
    hashes = {m["hash"] for m in matches if m}
    if len(hashes) != 1 or not all(
        m and cdk_parameter_id(m["hash"], m["kind"]) == m[0] for m in matches
    ):
        return {}  # not the naming this code knows: leave CDK's names as they are
    (old,) = hashes
    new = hashlib.sha256(written).hexdigest()
    renames = {m[0]: cdk_parameter_id(new, m["kind"]) for m in matches if m}
    return {**renames, old: new}


def nested_stack_name(root: dict[str, Any], bucket_parameter: str) -> str:
    """The nested stack's logical id up to "NestedStack" (e.g. LoginNodes), for a file name."""
    for logical_id, resource in root.get("Resources", {}).items():
        if resource.get("Type") == "AWS::CloudFormation::Stack" and bucket_parameter in json.dumps(
            resource.get("Properties", {}).get("TemplateURL")
        ):
            return logical_id.split("NestedStack", 1)[0] or logical_id
    return bucket_parameter


def _bucket(request: dict[str, Any], name: str) -> Any:
    import boto3
    from pcluster.models.s3_bucket import S3Bucket

    bucket_name = f"parallelcluster-{request['account_id']}-offline-{request['region']}"
    s3: Any = boto3.client("s3", region_name=request["region"])
    try:
        s3.head_bucket(Bucket=bucket_name)
    except Exception:
        # As in AWS, us-east-1 takes no LocationConstraint (moto refuses one, as AWS does).
        location = (
            {}
            if request["region"] == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": request["region"]}}
        )
        s3.create_bucket(Bucket=bucket_name, **location)
    return S3Bucket(
        service_name=name,
        stack_name=name,
        artifact_directory=f"parallelcluster/offline/{name}",
        name=bucket_name,
    )


def synthesise_image(request: dict[str, Any], config: Any, mapping: dict[str, str]) -> list[str]:
    from pcluster.templates.cdk_builder import CDKTemplateBuilder

    name = request["name"]
    template = CDKTemplateBuilder().build_imagebuilder_template(
        image_config=config, image_id=name, bucket=_bucket(request, name)
    )
    out = Path(request["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    reverse = display_ids(mapping)
    body = json.loads(template) if isinstance(template, str) else template
    return [str(write_json(out / "build-image.json", body, reverse))]


def offline_supported_regions() -> None:
    """Seed RegionValidator's list from pcluster's bundled copy instead of its URL.

    pcluster fetches the list with urllib (not boto3) and falls back to the bundled file
    when that fails; offline we go straight to the fallback, so the validator still runs.
    """
    from importlib.resources import files

    import pcluster.utils

    bundled = files("pcluster") / "resources" / "supported-regions"
    pcluster.utils.retrieve_supported_regions.cache = bundled.read_text().split("\n")


def missing_instance_types(request: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The stand-in descriptions for the config's instance types that EC2 (moto) lacks."""
    import boto3
    from worker_instance_types import STANDIN_INSTANCE_TYPES
    from worker_standins import strings

    offered = {**STANDIN_INSTANCE_TYPES, **(request.get("instance_types") or {})}
    wanted = sorted(set(strings(data)) & set(offered))
    if not wanted:
        return {}
    ec2 = boto3.client("ec2", region_name=request["region"])
    known = {
        t["InstanceType"]
        for t in ec2.describe_instance_types(Filters=[{"Name": "instance-type", "Values": wanted}])[
            "InstanceTypes"
        ]
    }
    return {t: offered[t] for t in wanted if t not in known}


def run(request: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    import marshmallow
    from pcluster.aws.aws_api import AWSApi
    from pcluster.constants import PCLUSTER_IMAGE_BUILD_STATUS_TAG, PCLUSTER_VERSION_TAG
    from pcluster.utils import get_installed_version
    from worker_standins import StandIns, substitute, substitute_text
    from worker_validate import Suppressor, flatten_schema_errors, traced_validate

    offline_supported_regions()

    response: dict[str, Any] = {"failures": [], "files": [], "mapping": {}}
    AWSApi.reset()
    data = request["config"]
    if request.get("standins"):
        started = time.perf_counter()
        # The AMI stands for one `pcluster build-image` made, so it carries pcluster's tags.
        image_tags = {
            PCLUSTER_VERSION_TAG: get_installed_version(),
            PCLUSTER_IMAGE_BUILD_STATUS_TAG: "available",
        }
        standins = StandIns(request["region"], request.get("public_subnets") or [], image_tags)
        mapping = standins.create_for(data)
        if standins.created_vpc:
            mapping["vpc-planned"] = standins.created_vpc
        response["mapping"] = mapping
        data = substitute(data, mapping)
        response["placeholders"] = {display_id(k): k for k in mapping if display_id(k) != k}
        timings["standins"] = time.perf_counter() - started
    mapping = response["mapping"]
    instance_types = missing_instance_types(request, data)

    started = time.perf_counter()
    if request["kind"] == "cluster":
        from pcluster.schemas.cluster_schema import ClusterSchema

        schema: Any = ClusterSchema(cluster_name=request["name"])
    else:
        from pcluster.schemas.imagebuilder_schema import ImageBuilderSchema

        schema = ImageBuilderSchema()
    try:
        config = schema.load(data)
    except marshmallow.ValidationError as exc:
        reverse = {v: k for k, v in mapping.items()}
        for path, message in flatten_schema_errors(exc.messages):
            message = substitute_text(message, reverse)
            response["failures"].append(
                {"level": "ERROR", "validator": "schema", "message": message, "path": list(path)}
            )
        timings["schema"] = time.perf_counter() - started
        return response
    timings["schema"] = time.perf_counter() - started

    if request.get("validate", True):
        started = time.perf_counter()
        if instance_types:
            # pcluster's own hook for instance types its EC2 cannot describe (as DevSettings'
            # InstanceTypesData would set it): only for types moto lacks.
            AWSApi.instance().ec2.additional_instance_types_data = instance_types
        response["failures"] = traced_validate(
            config, data, [Suppressor(request.get("suppress", []))]
        )
        reverse = {v: k for k, v in mapping.items()}
        for failure in response["failures"]:
            failure["message"] = substitute_text(failure["message"], reverse)
        timings["validators"] = time.perf_counter() - started
    response["_state"] = (config, mapping, instance_types)
    return response


def synthesise(
    request: dict[str, Any], response: dict[str, Any], timings: dict[str, float]
) -> None:
    """Phase two, once every job validated without errors: write the templates."""
    from pcluster.aws.aws_api import AWSApi

    config, mapping, instance_types = response.pop("_state")
    AWSApi.reset()
    if instance_types:
        AWSApi.instance().ec2.additional_instance_types_data = instance_types
    started = time.perf_counter()
    synth = synthesise_cluster if request["kind"] == "cluster" else synthesise_image
    response["files"] = synth(request, config, mapping)
    timings["synthesis"] = time.perf_counter() - started


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """One request, from a clean slate: moto's state, pcluster's caches and clients reset."""
    from pcluster.aws.aws_api import AWSApi
    from pcluster.aws.common import Cache

    os.environ["AWS_DEFAULT_REGION"] = request["region"]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "sandbox")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "sandbox")
    os.environ["MOTO_ACCOUNT_ID"] = request["account_id"]
    AWSApi.reset()
    Cache.clear_all()
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        started = time.perf_counter()
        if request.get("endpoint_url"):
            os.environ["AWS_ENDPOINT_URL"] = request["endpoint_url"]
        else:
            from moto import mock_aws

            # Entering resets every moto backend, leaving drops their data: each request
            # sees an empty account, as a fresh process does.
            stack.enter_context(mock_aws())
        startup = time.perf_counter() - started
        jobs = [{**request, **job} for job in request["jobs"]]
        all_timings: list[dict[str, float]] = [{} for _ in jobs]
        all_timings[0]["moto"] = startup
        for job, timings in zip(jobs, all_timings, strict=True):
            try:
                response = run(job, timings)
            except Exception as exc:
                response = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            results.append(response)
        # Templates only when every config is valid: an error anywhere stops the plan anyway.
        valid = all(
            "_state" in r and not any(f["level"] == "ERROR" for f in r["failures"]) for r in results
        )
        for job, response, timings in zip(jobs, results, all_timings, strict=True):
            if valid and job.get("synthesise"):
                try:
                    synthesise(job, response, timings)
                except Exception as exc:
                    response["error"] = f"{type(exc).__name__}: {exc}"
                    response["traceback"] = traceback.format_exc()
            response.pop("_state", None)
            response["timings"] = timings
    AWSApi.reset()
    Cache.clear_all()
    return {"results": results}


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--serve":
        from worker_serve import serve

        return serve(argv[2:], handle)
    request_path, response_path = Path(argv[1]), Path(argv[2])
    request = json.loads(request_path.read_text())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    response = handle(request)
    response_path.write_text(json.dumps(response, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
