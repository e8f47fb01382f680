"""The upload bundle: content-addressed, skipped when present, the env file and wrapper."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.config import Config, load_config
from pwbcluster.errors import StageError
from pwbcluster.stages.image import bundle, service
from pwbcluster.stages.image.envfile import ENV_FILE, image_env

ROOT = Path(__file__).resolve().parents[2]


def _bundle(config: Config, network: Any) -> bundle.Bundle:
    return service.prepare(config, network, "ami-0123456789abcdef0").bundle


def test_upload_is_content_addressed_and_skipped_when_present(
    config: Config, s3_only: dict[str, Any]
) -> None:
    s3, network = s3_only["s3"], s3_only["network"]
    first = _bundle(config, network)
    fingerprint = service.fingerprint_for(config)
    assert first.prefix == f"image/{fingerprint[:16]}/"
    report = bundle.upload_bundle(s3, first)
    assert sorted(report.uploaded) == first.object_keys() and report.skipped == []
    for key in first.object_keys():
        body = s3.get_object(Bucket="scripts", Key=key)["Body"].read()
        assert body == first.files[key[len(first.prefix) :]]
        head = s3.head_object(Bucket="scripts", Key=key)
        assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()

    again = bundle.upload_bundle(s3, _bundle(config, network))
    assert again.uploaded == [] and sorted(again.skipped) == first.object_keys()


def test_a_damaged_object_is_replaced(config: Config, s3_only: dict[str, Any]) -> None:
    s3, network = s3_only["s3"], s3_only["network"]
    made = _bundle(config, network)
    bundle.upload_bundle(s3, made)
    damaged = made.prefix + "image/install-r.sh"
    s3.put_object(Bucket="scripts", Key=damaged, Body=b"truncated")
    report = bundle.upload_bundle(s3, made)
    assert report.uploaded == [damaged]


def test_a_script_change_uploads_under_a_new_prefix_and_delete_keeps_others(
    project: Path, s3_only: dict[str, Any]
) -> None:
    s3, network = s3_only["s3"], s3_only["network"]
    config = load_config(project / "config" / "example.yaml")
    old = _bundle(config, network)
    bundle.upload_bundle(s3, old)
    script = project / "image" / "install-quarto.sh"
    script.write_text(script.read_text() + "\n# changed\n")
    new = _bundle(load_config(project / "config" / "example.yaml"), network)
    assert new.prefix != old.prefix
    bundle.upload_bundle(s3, new)
    assert bundle.delete_prefix(s3, "scripts", old.prefix) == len(old.files)
    left = [o["Key"] for o in s3.list_objects_v2(Bucket="scripts")["Contents"]]
    assert sorted(left) == new.object_keys()
    with pytest.raises(ValueError):
        bundle.delete_prefix(s3, "scripts", "")


def test_env_file_matches_what_the_entry_script_requires(config: Config) -> None:
    text = (ROOT / "image" / "install-image.sh").read_text()
    block = re.search(r"REQUIRED_KEYS=\(([^)]*)\)", text)
    assert block, "install-image.sh lost its REQUIRED_KEYS list"
    required = set(block.group(1).split())
    env = image_env(config.data["image"])
    assert required <= set(env), f"missing from the env file: {required - set(env)}"
    assert env["R_DEFAULT"] == str(config.data["image"]["r"]["default"])
    assert env["GPU_ENABLED"] in ("true", "false")


def test_env_values_cannot_carry_code(config: Config) -> None:
    image = dict(config.data["image"])
    image["quarto"] = {"version": "1.0.0;$(reboot)"}
    with pytest.raises(ValueError, match="QUARTO_VERSION"):
        image_env(image)


def test_wrapper_runs_the_entry_script_and_is_shellcheck_clean(
    config: Config, s3_only: dict[str, Any], tmp_path: Path
) -> None:
    made = _bundle(config, s3_only["network"])
    wrapper = made.files[bundle.ENTRY_WRAPPER].decode()
    assert f"source_prefix=s3://scripts/{made.prefix.rstrip('/')}\n" in wrapper
    assert f'"${{workdir}}/{bundle.ENTRY_SCRIPT}" --env-file "${{workdir}}/{ENV_FILE}"' in wrapper
    assert made.entry_url == f"s3://scripts/{made.prefix}entry.sh"
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (requirements/apt-test.txt lists it)")
    path = tmp_path / "entry.sh"
    path.write_text(wrapper)
    done = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_a_refused_upload_is_one_clear_error(config: Config, s3_only: dict[str, Any]) -> None:
    s3 = s3_only["s3"]
    s3.put_bucket_policy(
        Bucket="scripts",
        Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
        '"Action":"s3:*","Resource":["arn:aws:s3:::scripts","arn:aws:s3:::scripts/*"]}]}',
    )
    with pytest.raises(StageError, match=r"s3://scripts/image/.* was refused"):
        bundle.upload_bundle(s3, _bundle(config, s3_only["network"]))
