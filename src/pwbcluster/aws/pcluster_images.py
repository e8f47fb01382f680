"""Drive ``pcluster build-image`` and friends (the pinned ParallelCluster venv's CLI).

``PclusterImages`` wraps the commands the image stage and tasks need, each returning the
parsed JSON pcluster prints. ``wait_for_build`` polls ``describe-image`` with a rich
status line and streams ``get-image-log-events`` while the build runs (about an hour).
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from pwbcluster.errors import PclusterError, StageError

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]
COMMAND_TIMEOUT_SECONDS = 900
POLL_SECONDS = 30.0
BUILD_TIMEOUT_SECONDS = 4 * 3600.0
# How pcluster words "no such image" (NotFoundException in its image controller).
NOT_FOUND_MARKERS = ("No image or stack associated", "does not exist", "not found")


def _default_runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
    )


class PclusterImages:
    """``pcluster`` image commands for one region."""

    def __init__(
        self, region: str, cli: Sequence[str] | None = None, runner: Runner | None = None
    ) -> None:
        if cli is None:
            from pwbcluster.pcluster.patch import ensure_patched
            from pwbcluster.pcluster.venv import pcluster_cli

            ensure_patched()  # every pcluster run goes through the patched package
            cli = pcluster_cli()
        self.region = region
        self.cli = list(cli)
        self.runner = runner or _default_runner

    def run(self, *args: str, missing_ok: bool = False) -> dict[str, Any]:
        argv = [*self.cli, *args, "--region", self.region]
        log.info("running %s", " ".join(argv))
        done = self.runner(argv)
        try:
            body = json.loads(done.stdout) if done.stdout.strip() else {}
        except json.JSONDecodeError:
            body = {"message": done.stdout.strip()}
        if done.returncode != 0:
            message = str(body.get("message") or done.stderr.strip() or "no output")
            if missing_ok and any(marker in message for marker in NOT_FOUND_MARKERS):
                return {}
            raise PclusterError(f"pcluster {args[0]} failed: {message}")
        return dict(body) if isinstance(body, dict) else {"value": body}

    def build(self, image_id: str, config_path: Path) -> dict[str, Any]:
        return self.run(
            "build-image", "--image-id", image_id, "--image-configuration", str(config_path)
        )

    def describe(self, image_id: str) -> dict[str, Any]:
        """The image's description, or {} when pcluster knows no such image."""
        return self.run("describe-image", "--image-id", image_id, missing_ok=True)

    def delete(self, image_id: str, force: bool = False) -> dict[str, Any]:
        args = ["delete-image", "--image-id", image_id]
        if force:
            args += ["--force", "true"]
        return self.run(*args, missing_ok=True)

    def list_images(self, status: str = "AVAILABLE") -> list[dict[str, Any]]:
        return list(self.run("list-images", "--image-status", status).get("images", []))

    def log_streams(self, image_id: str) -> list[str]:
        body = self.run("list-image-log-streams", "--image-id", image_id, missing_ok=True)
        return [s["logStreamName"] for s in body.get("logStreams", [])]

    def log_events(
        self, image_id: str, stream: str, next_token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        args = ["get-image-log-events", "--image-id", image_id, "--log-stream-name", stream]
        args += ["--start-from-head", "true"]
        if next_token:
            args += ["--next-token", next_token]
        body = self.run(*args, missing_ok=True)
        return list(body.get("events", [])), body.get("nextToken")


class LogFollower:
    """Prints new log events of every stream of an image build, once each."""

    def __init__(self, client: PclusterImages, image_id: str, console: Console) -> None:
        self.client, self.image_id, self.console = client, image_id, console
        self.tokens: dict[str, str | None] = {}

    def poll(self) -> int:
        printed = 0
        for stream in self.client.log_streams(self.image_id):
            events, token = self.client.log_events(self.image_id, stream, self.tokens.get(stream))
            for event in events:
                message = str(event.get("message", "")).rstrip()
                self.console.print(f"[dim]{stream}[/dim] {message}", highlight=False, markup=True)
                printed += 1
            if token:
                self.tokens[stream] = token
        return printed


def ami_of(description: dict[str, Any]) -> str:
    ami = description.get("ec2AmiInfo", {}).get("amiId")
    if not ami:
        raise StageError(f"pcluster reports the image complete but names no AMI: {description}")
    return str(ami)


def wait_for_build(
    client: PclusterImages,
    image_id: str,
    console: Console,
    poll_seconds: float = POLL_SECONDS,
    timeout_seconds: float = BUILD_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait for the build, streaming its log; return the AMI id or raise StageError."""
    follower = LogFollower(client, image_id, console)
    started = time.monotonic()
    with console.status(f"building image {image_id}") as status:
        while True:
            description = client.describe(image_id)
            state = str(description.get("imageBuildStatus", "UNKNOWN"))
            elapsed = int(time.monotonic() - started)
            status.update(
                f"building image {image_id}: {state}, {elapsed // 60} min {elapsed % 60} s"
            )
            follower.poll()
            if state == "BUILD_COMPLETE":
                return ami_of(description)
            if state in ("BUILD_FAILED", "DELETE_FAILED", "DELETE_COMPLETE", "UNKNOWN"):
                reason = description.get("imageBuildFailureReason") or description.get(
                    "cloudformationStackStatusReason", "no reason given"
                )
                raise StageError(
                    f"image build {image_id} ended in {state}: {reason}. See the log with "
                    f"`invoke image.logs`, remove it with `invoke image.delete`, then re-run."
                )
            if time.monotonic() - started > timeout_seconds:
                raise StageError(
                    f"image build {image_id} still {state} after {timeout_seconds / 3600:.1f} h; "
                    "it keeps running in AWS: re-run later to pick it up"
                )
            sleep(poll_seconds)
