"""What a stage may ask of the account it deploys into: the one seam between stage code
and "real AWS or a stand-in".

Three adapters implement ``Account``: ``pwbcluster.aws.account.AwsAccount`` (the user's
AWS account, the Pulumi CLI, the patched pcluster CLI), ``pwbcluster.sandbox.account
.SandboxAccount`` (a local moto server, Pulumi mocks that create in it, ParallelCluster's
own code offline, stand-in images) and ``pwbcluster.sandbox.plan.PlanAccount`` (no server
at all: ``invoke plan``). The stage code above them is the same; it never asks which one
it has. What an adapter cannot do it says by name through ``cannot()``, with the reason,
so a stage reports "skipped, because ..." rather than pretending.

Requests are plain data; the adapters import nothing of the stages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pwbcluster.netpaths import Topology

# Capabilities an account may lack, named for ``Account.cannot``.
DIRECTORY = "directory"  # an LDAP/Kerberos server behind the directory's addresses
JUMP_HOST_BOOT = "jump_host_boot"  # a jump host that really boots and runs its script

# ``locate(kind, rendered_path)``: the deployment key behind a rendered ParallelCluster
# key, as ``file:line key.path``, or None when it has no single source.
Locate = Callable[[str, Sequence[str | int]], str | None]


@dataclass(frozen=True)
class StackRequest:
    """One Pulumi stack: its program builds components and returns the stage's outputs."""

    part: str  # "network" | "services"
    project: str
    stack: str
    program: Callable[[], Mapping[str, Any]]
    # Output names whose values are secret (exported as secrets, never in a contract).
    secret_outputs: tuple[str, ...] = ()
    # Resource types to replace even when unchanged (`aux.renew-certs`: the server
    # certificates); the sandbox's re-run replaces everything anyway.
    replace_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageBuild:
    """A rendered build-image configuration, its scripts already uploaded."""

    image_id: str
    os: str
    config: Mapping[str, Any]
    config_path: Path
    fingerprint: str
    parent_image: str
    root_volume_gb: int
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ClusterDeploy:
    """A rendered ParallelCluster configuration, its node files already uploaded."""

    name: str
    config: Mapping[str, Any]
    config_path: Path
    public_subnet_ids: tuple[str, ...]
    # What the cluster consists of, one line each (what a rehearsal records).
    summary: tuple[str, ...] = ()
    uploaded: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Values known only after upstream stages ran (a plan's placeholders).
    placeholders: tuple[str, ...] = ()
    locate: Locate | None = None


@dataclass
class Notes:
    """What an adapter simulated, suppressed or could not check, each with its reason."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)


class Account(Protocol):
    """The deployment target as the stages see it (see the module docstring)."""

    # Human label for messages: "AWS account", "sandbox at https://127.0.0.1:PORT", "plan".
    label: str
    region: str
    # True when what the stages create is not real AWS (outputs are then marked simulated).
    simulated: bool
    notes: Notes

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` in this account's region."""

    def cannot(self, capability: str) -> str | None:
        """Why this account lacks ``capability`` (see the constants above), or None."""

    # Pulumi stacks (network, services)
    def stack_up(self, request: StackRequest) -> Mapping[str, Any]:
        """Create or update the stack; return its outputs (secret ones included)."""

    def stack_destroy(self, request: StackRequest) -> None:
        """Remove everything the stack created; a stack that does not exist is no error."""

    # The custom AMI
    def official_parent_image(self, os_name: str, pcluster_version: str) -> str:
        """The official ParallelCluster AMI for the OS (or its stand-in)."""

    def check_image(self, build: ImageBuild) -> None:
        """Validate the build-image config before anything is built."""

    def build_image(self, build: ImageBuild) -> str:
        """Build (or follow a build of) the image; return the AMI id."""

    def delete_image(self, image_id: str, ami_id: str, built_by_pcluster: bool) -> None:
        """Remove one image (through pcluster when it built it); gone already is fine."""

    def delete_pending_image(self, image_id: str) -> None:
        """Remove a build that never produced an AMI, if there is one."""

    def forget_image_standins(self) -> None:
        """Remove what the account made to stand in for parent images (if anything)."""

    # The cluster
    def check_cluster(self, deploy: ClusterDeploy) -> Sequence[Path]:
        """Validate the cluster config before it is deployed; return the CloudFormation
        templates the account synthesised from it (none where it synthesises none)."""

    def deploy_cluster(self, deploy: ClusterDeploy) -> str:
        """Create or update the cluster and wait; return the login load balancer's address."""

    def delete_cluster(self, name: str) -> None:
        """Delete the cluster and wait until it is gone; absent already is fine."""

    def network_topology(self, vpc_id: str) -> Topology | None:
        """The VPC's subnets, routes and endpoints, or None where this account cannot know."""
