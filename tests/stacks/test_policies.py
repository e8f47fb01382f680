"""Policy-style checks on the aux programs, run under Pulumi mocks (no CLI, no cloud).

Each assertion names the resource URN it fails on. The variants (default SimpleAD,
every database on, Managed AD, LDAPS opted out, an existing VPC) run once per session.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pwbcluster.contracts import (
    CLUSTER_SCRIPTS_PREFIX,
    HA_SCALING_SUMS_KEY,
    IMAGE_SCRIPTS_PREFIX,
    JUMP_TOOL_PREFIX,
    NetworkOutputs,
    ServicesOutputs,
)
from pwbcluster.sandbox.mockrun import Registered
from pwbcluster.stages.cluster.bundle import node_env
from pwbcluster.stages.services.program import SECRET_OUTPUTS
from pwbcluster.stages.services.secrets import SAFE_SPECIALS
from pwbcluster.stages.stack_outputs import contract_fields

from .conftest import LICENCE_ARN, Deployed, policy_of

OPEN = {"0.0.0.0/0", "::/0"}
# Ingress from anywhere that the design needs: none (the LDAPS front is internal, the jump
# host is reached through SSM, databases admit security groups only).
OPEN_INGRESS_ALLOWED: set[str] = set()


def _resource_class(token: str) -> Any:
    """``aws:ec2/vpc:Vpc`` -> pulumi_aws.ec2.Vpc (None for components)."""
    package, module_path, name = token.split(":")
    if package not in ("aws", "random", "tls"):
        return None
    module = module_path.split("/")[0]
    mod = importlib.import_module(
        f"pulumi_{package}" if module == "index" else f"pulumi_{package}.{module}"
    )
    return getattr(mod, name)


def _taggable(token: str) -> bool:
    cls = _resource_class(token)
    return cls is not None and "tags" in inspect.signature(cls._internal_init).parameters


def test_no_database_is_public_and_all_are_encrypted(deployments: dict[str, Deployed]) -> None:
    dbs = deployments["all-databases"].of_type(":Instance")
    dbs = [d for d in dbs if d.type == "aws:rds/instance:Instance"]
    assert len(dbs) == 3, [d.urn for d in dbs]
    for db in dbs:
        i = db.inputs
        assert i.get("publiclyAccessible") is False, f"{db.urn}: publicly accessible"
        assert i.get("storageEncrypted") is True, f"{db.urn}: storage not encrypted"
        assert i.get("backupRetentionPeriod", 0) >= 1, f"{db.urn}: backups off"
        assert i.get("multiAz") is True, f"{db.urn}: multi_az option ignored"
        assert "password" in db.secret_inputs, f"{db.urn}: password input not secret"
    engines = sorted(d.inputs["engine"] for d in dbs)
    assert engines == ["mariadb", "postgres", "postgres"], engines
    for group in deployments["all-databases"].of_type("rds/parameterGroup:ParameterGroup"):
        params = {p["name"]: p["value"] for p in group.inputs["parameters"]}
        assert params.get("rds.force_ssl") == "1" or params.get("require_secure_transport") in (
            "1",
            "ON",
        ), f"{group.urn}: TLS not required ({params})"


def test_no_ingress_from_anywhere(deployments: dict[str, Deployed]) -> None:
    checked = 0
    for d in deployments.values():
        for sg in d.of_type("ec2/securityGroup:SecurityGroup"):
            for rule in sg.inputs.get("ingress") or []:
                checked += 1
                cidrs = set(rule.get("cidrBlocks") or []) | set(rule.get("ipv6CidrBlocks") or [])
                if cidrs & OPEN:
                    assert sg.urn in OPEN_INGRESS_ALLOWED, f"{sg.urn}: ingress from {cidrs}"
        for rule in d.of_type("SecurityGroupIngressRule") + d.of_type("SecurityGroupRule"):
            cidr = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrBlocks")
            assert cidr not in OPEN, f"{rule.urn}: ingress from {cidr}"
    assert checked >= 3, "no ingress rule was checked at all"


def test_databases_admit_only_the_cluster_and_jump_host(default: Deployed) -> None:
    groups = {sg.name: sg for sg in default.of_type("ec2/securityGroup:SecurityGroup")}
    cluster, jump = groups["example-cluster-sg"], groups["example-jump-sg"]
    db_sg = groups["example-workbench-sg"]
    (rule,) = db_sg.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"]) == (5432, 5432), f"{db_sg.urn}: {rule}"
    assert set(rule["securityGroups"]) == {cluster.id, jump.id}, f"{db_sg.urn}: {rule}"
    assert not rule.get("cidrBlocks"), f"{db_sg.urn}: admits CIDRs {rule['cidrBlocks']}"
    assert not jump.inputs.get("ingress"), f"{jump.urn}: jump host accepts inbound traffic"


def test_bucket_is_private_encrypted_versioned_and_tls_only(default: Deployed) -> None:
    bucket = default.one("s3/bucket:Bucket")
    name = bucket.id
    block = default.one("BucketPublicAccessBlock")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"):
        assert block.inputs[flag] is True, f"{block.urn}: {flag} is not set"
    assert block.inputs["restrictPublicBuckets"] is True, f"{block.urn}: restrictPublicBuckets"
    assert block.inputs["bucket"] == name, f"{block.urn}: blocks another bucket"
    versioning = default.one("s3/bucketVersioning:BucketVersioning")
    status = versioning.inputs["versioningConfiguration"]["status"]
    assert status == "Enabled", f"{versioning.urn}: versioning {status}"
    sse = default.one("BucketServerSideEncryptionConfiguration")
    algo = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
    assert algo in ("aws:kms", "AES256"), f"{sse.urn}: {algo}"
    policy = default.one("s3/bucketPolicy:BucketPolicy")
    doc = policy_of(policy)
    arn = bucket.outputs["arn"]
    denies = [
        s
        for s in doc["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert denies, f"{policy.urn}: no deny of non-TLS requests"
    assert {arn, f"{arn}/*"} <= set(denies[0]["Resource"]), f"{policy.urn}: {denies[0]}"
    assert policy.inputs["bucket"] == name, f"{policy.urn}: applies to another bucket"


@pytest.mark.parametrize("variant", ["default", "all-databases", "managed-ad"])
def test_every_taggable_resource_is_tagged(deployments: dict[str, Deployed], variant: str) -> None:
    d = deployments[variant]
    expected = d.config.tags()
    assert {"Owner", "Deployment", "Project"} <= set(expected)
    tagged = 0
    for r in d.registered:
        if not _taggable(r.type):
            continue
        tags = r.inputs.get("tags") or {}
        missing = {k: v for k, v in expected.items() if tags.get(k) != v}
        assert not missing, f"{r.urn}: missing or wrong tags {sorted(missing)}"
        tagged += 1
    assert tagged >= 30, f"only {tagged} taggable resources seen"


def _contains(value: Any, needle: str) -> bool:
    return needle in json.dumps(value, default=str)


@pytest.mark.parametrize("variant", ["default", "all-databases"])
def test_every_password_and_private_key_is_secret(
    deployments: dict[str, Deployed], variant: str
) -> None:
    d = deployments[variant]
    values = d.secret_values()
    passwords = [u for u in values if "RandomPassword" in u]
    assert len(passwords) >= 4, f"too few generated passwords: {passwords}"
    uses = 0
    for r in d.registered:
        for key, value in r.inputs.items():
            for origin, secret in values.items():
                if _contains(value, secret):
                    uses += 1
                    assert key in r.secret_inputs, (
                        f"{r.urn}: input {key} carries the value of {origin} in the clear"
                    )
    assert uses >= len(passwords), "generated values are not used"
    run = d.services_run
    for name, value in run.outputs.items():
        for origin, secret in values.items():
            if _contains(value, secret):
                assert name in run.secret_outputs, f"output {name} leaks {origin}"
    assert set(SECRET_OUTPUTS) <= run.secret_outputs


def test_user_data_holds_no_secret(default: Deployed) -> None:
    (instance,) = [r for r in default.registered if r.type == "aws:ec2/instance:Instance"]
    user_data = instance.inputs["userData"]
    for origin, secret in default.secret_values().items():
        assert secret not in user_data, f"{instance.urn}: user-data contains {origin}"
    assert default.services.admin_password_secret_arn in user_data, (
        f"{instance.urn}: user-data does not name the admin secret ARN"
    )
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required", instance.urn
    assert instance.inputs["rootBlockDevice"]["encrypted"] is True, instance.urn
    assert instance.inputs.get("associatePublicIpAddress") is False, instance.urn


def _statements(r: Registered) -> list[dict[str, Any]]:
    return list(policy_of(r)["Statement"])


DESCRIBE_ONLY = {
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeCapacityReservations",
}
# '*' with a condition that ties it to this cluster's own instances (as ParallelCluster's
# head node policy does: TerminateInstances supports no resource narrower than the tag).
CONDITIONED_ON_CLUSTER_TAG = {"ec2:TerminateInstances"}


@pytest.mark.parametrize("variant", ["default", "all-databases"])
def test_iam_policies_name_exact_arns(deployments: dict[str, Deployed], variant: str) -> None:
    d = deployments[variant]
    bucket_arn = d.network.bucket_arn
    secret_arns = {r.outputs["arn"] for r in d.of_type("secretsmanager/secret:Secret")}
    if d.services.license_secret_arn:
        secret_arns.add(d.services.license_secret_arn)
    allowed_objects = {
        f"{bucket_arn}/{IMAGE_SCRIPTS_PREFIX}*",
        f"{bucket_arn}/{CLUSTER_SCRIPTS_PREFIX}*",
        f"{bucket_arn}/{JUMP_TOOL_PREFIX}*",
        f"{bucket_arn}/{HA_SCALING_SUMS_KEY}",
    }
    policies = d.of_type("iam/policy:Policy") + d.of_type("iam/rolePolicy:RolePolicy")
    assert len(policies) == 5, [p.urn for p in policies]
    for policy in policies:
        for statement in _statements(policy):
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement["Resource"]
            resources = [resources] if isinstance(resources, str) else resources
            if "*" in resources:
                # Only read-only Describe calls that support no resource-level permission,
                # or termination restricted by condition to this cluster's tagged instances.
                tagged = statement.get("Condition", {}).get("StringEquals", {})
                own = tagged.get("ec2:ResourceTag/parallelcluster:cluster-name") == d.config.name
                assert set(actions) <= DESCRIBE_ONLY or (
                    set(actions) <= CONDITIONED_ON_CLUSTER_TAG and own
                ), f"{policy.urn}: '*' resource for {actions}"
            for action in actions:
                assert not action.endswith(":*"), f"{policy.urn}: wildcard action {action}"
                if action.startswith("s3:"):
                    assert set(resources) <= allowed_objects | {bucket_arn}, (
                        f"{policy.urn}: {action} on {resources}"
                    )
                if action.startswith("secretsmanager:"):
                    assert set(resources) <= secret_arns, f"{policy.urn}: {action} {resources}"


# What would let a node change what another node runs as root: write, delete or re-ACL an
# object of the scripts prefix, or rewrite the bucket's policy.
_SCRIPT_WRITES = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectAcl",
    "s3:PutBucketPolicy",
    "s3:PutBucketAcl",
)


@pytest.mark.parametrize("variant", ["default", "all-databases"])
def test_no_role_may_write_the_node_scripts(deployments: dict[str, Deployed], variant: str) -> None:
    """Bucket write access is the trust boundary of the node scripts (cluster/node-start.sh
    fetch_bundle): the entry scripts ParallelCluster fetches cannot check themselves."""
    d = deployments[variant]
    bucket_arn = d.network.bucket_arn
    targets = (
        f"{bucket_arn}/{CLUSTER_SCRIPTS_PREFIX}node-start.sh",
        f"{bucket_arn}/{CLUSTER_SCRIPTS_PREFIX}SHA256SUMS",
        bucket_arn,
    )
    policies = d.of_type("iam/policy:Policy") + d.of_type("iam/rolePolicy:RolePolicy")
    readers = set()
    for policy in policies:
        for statement in _statements(policy):
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement["Resource"]
            resources = [resources] if isinstance(resources, str) else resources
            covered = [t for t in targets for r in resources if fnmatch.fnmatchcase(t, r)]
            if statement.get("Effect") != "Allow" or not covered:
                continue
            if "s3:GetObject" in actions and targets[0] in covered:
                readers.add(policy.name)
            granted = [w for w in _SCRIPT_WRITES for a in actions if fnmatch.fnmatchcase(w, a)]
            assert not granted, f"{policy.urn}: {granted} on {covered}"
    # Not vacuous: every node role reads the prefix through these very statements.
    assert {f"example-nodes-{role}" for role in ROLE_ENTRY_SCRIPTS} <= readers, readers


@pytest.mark.parametrize("variant", ["default", "no-controller-ha"])
def test_only_the_head_may_write_the_ha_scaling_digests(
    deployments: dict[str, Deployed], variant: str
) -> None:
    """Login nodes install the head's resume/suspend programs and sudoers rule as root
    only when they match this list: no other role may write it, and it exists only with
    controller HA."""
    d = deployments[variant]
    key = f"{d.network.bucket_arn}/{HA_SCALING_SUMS_KEY}"
    access: dict[str, set[str]] = {}
    for policy in d.of_type("iam/policy:Policy") + d.of_type("iam/rolePolicy:RolePolicy"):
        for statement in _statements(policy):
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement["Resource"]
            resources = [resources] if isinstance(resources, str) else resources
            s3 = {a for a in actions if a.startswith("s3:") or a == "*"}
            if (
                statement.get("Effect") == "Allow"
                and s3
                and any(fnmatch.fnmatchcase(key, r) for r in resources)
            ):
                access.setdefault(policy.name, set()).update(s3)
    if variant == "no-controller-ha":
        assert access == {}
        return
    assert access == {
        "example-nodes-head-node": {"s3:PutObject"},
        "example-nodes-login-node": {"s3:GetObject"},
    }


def _secrets_read_by(d: Deployed, policy_name: str) -> set[str]:
    (policy,) = [p for p in d.of_type("iam/policy:Policy") if p.name == policy_name]
    return {
        arn
        for s in _statements(policy)
        if any(a.startswith("secretsmanager:") for a in s["Action"])
        for arn in s["Resource"]
    }


# The scripts each node role runs (ParallelCluster's OnNodeStart, then OnNodeConfigured);
# what they source or run from the bundle is followed from their own text.
ROLE_ENTRY_SCRIPTS = {
    "head-node": ("node-start.sh", "head-node.sh"),
    "login-node": ("node-start.sh", "login-node.sh"),
    "compute-node": ("node-start.sh", "compute-node.sh"),
}
_BUNDLED = re.compile(r'(?:source|bash) "\$\{PWB_HOME\}/cluster/([\w/.-]+)"')
_SECRET_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*_SECRET_ARN)[}:]")
# A function that reads the secrets of a settings prefix it is given (lib/database.sh's
# ensure_db_role DB): the names it builds, and the prefixes it is called with.
_PREFIXED_SECRET = re.compile(r'"\$\{prefix\}_([A-Z0-9_]*SECRET_ARN)"')
_PREFIX_CALL = re.compile(r"^\s*ensure_db_role ([A-Z][A-Z0-9_]*)\s*$", re.MULTILINE)


def secret_settings_used(role: str) -> set[str]:
    """node.env names of the secret ARNs the role's scripts use, from the scripts."""
    cluster = Path(__file__).resolve().parents[2] / "cluster"
    todo, seen = list(ROLE_ENTRY_SCRIPTS[role]), set()
    text = ""
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        body = (cluster / name).read_text()
        text += body
        todo.extend(_BUNDLED.findall(body))
    used = set(_SECRET_VAR.findall(text))
    for prefix in _PREFIX_CALL.findall(text):
        used |= {f"{prefix}_{suffix}" for suffix in _PREFIXED_SECRET.findall(text)}
    return used


@pytest.mark.parametrize("variant", ["default", "all-databases"])
@pytest.mark.parametrize("role", sorted(ROLE_ENTRY_SCRIPTS))
def test_each_node_role_reads_exactly_the_secrets_its_scripts_use(
    deployments: dict[str, Deployed], variant: str, role: str
) -> None:
    d = deployments[variant]
    env = node_env(d.config.model, d.network, d.services, "example")
    used = secret_settings_used(role)
    assert set(used) <= set(env), f"{role}: scripts use settings node.env lacks: {used - set(env)}"
    wanted = {env[name] for name in used if env[name]}
    granted = _secrets_read_by(d, f"example-nodes-{role}")
    assert granted == wanted, (
        f"example-nodes-{role}: grants {sorted(granted - wanted)} no script of it reads, "
        f"lacks {sorted(wanted - granted)} (scripts use {sorted(used)})"
    )


def test_the_head_node_reads_database_secrets_only(deployments: dict[str, Deployed]) -> None:
    d = deployments["all-databases"]
    s = d.services
    assert s.audit_db is not None and s.slurm_accounting_db is not None
    assert s.license_secret_arn == LICENCE_ARN
    head = _secrets_read_by(d, "example-nodes-head-node")
    assert head == {
        s.workbench_db.password_secret_arn,
        s.workbench_db.master_password_secret_arn,
        s.audit_db.password_secret_arn,
        s.audit_db.master_password_secret_arn,
    }
    login = _secrets_read_by(d, "example-nodes-login-node")
    # Login nodes connect as Workbench's roles: no master password, no cookie key for head.
    assert s.workbench_db.master_password_secret_arn not in login
    assert s.audit_db.master_password_secret_arn not in login
    assert s.cookie_key_secret_arn not in head and LICENCE_ARN not in head
    assert s.workbench_db.username != s.workbench_db.master_username
    assert _secrets_read_by(d, "example-nodes-compute-node") == set()
    (jump,) = d.of_type("iam/rolePolicy:RolePolicy")
    jump_reads = {
        arn
        for st in _statements(jump)
        if any(a.startswith("secretsmanager:") for a in st["Action"])
        for arn in st["Resource"]
    }
    assert jump_reads == {
        s.admin_password_secret_arn,
        s.bind_password_secret_arn,
        s.users_password_secret_arn,
    }, f"{jump.urn}: {jump_reads}"


@pytest.mark.parametrize("variant", ["default", "all-databases", "no-ldaps", "existing-vpc"])
def test_outputs_are_exactly_the_contract(deployments: dict[str, Deployed], variant: str) -> None:
    d = deployments[variant]
    assert set(d.network_run.outputs) == contract_fields(NetworkOutputs)
    assert set(d.services_run.outputs) - set(SECRET_OUTPUTS) == contract_fields(ServicesOutputs)
    n, s = d.network, d.services
    assert len(n.private_subnet_ids) >= 2 and len(set(n.availability_zones)) >= 2
    assert all(isinstance(x, str) and x.startswith("subnet-") for x in n.private_subnet_ids)
    assert n.bucket_arn == f"arn:aws:s3:::{n.bucket_name}"
    assert s.workbench_db.port == 5432 and s.workbench_db.engine == "postgres"
    assert s.directory_id.startswith("d-") and len(s.directory_dns_addresses) == 2
    ids = {r.id for r in d.registered}
    for value in (s.cluster_security_group_id, s.jump_host_instance_id, s.key_pair_name):
        assert value in ids, f"{value} is not the id of a created resource"
    policy_arns = {r.outputs.get("arn") for r in d.of_type("iam/policy:Policy")}
    for arn in (s.head_node_policy_arn, s.login_node_policy_arn, n.image_build_policy_arn):
        assert arn in policy_arns, f"{arn} is not a created policy"


def test_rendered_user_data_is_valid_shell(default: Deployed, tmp_path: Path) -> None:
    (instance,) = [r for r in default.registered if r.type == "aws:ec2/instance:Instance"]
    script = tmp_path / "user-data.sh"
    script.write_text(instance.inputs["userData"])
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, f"{instance.urn}: {checked.stderr}"
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (requirements/apt-test.txt)")
    linted = subprocess.run(
        ["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True
    )
    assert linted.returncode == 0, f"{instance.urn}: {linted.stdout}"


def test_database_identifiers_fit_the_provider_limit(deployments: dict[str, Deployed]) -> None:
    for db in deployments["all-databases"].of_type("rds/instance:Instance"):
        prefix = db.inputs["identifierPrefix"]
        assert len(prefix) <= 37 and prefix.endswith("-"), f"{db.urn}: {prefix}"


def _login_statements(d: Deployed) -> dict[str, dict[str, Any]]:
    (policy,) = [
        p for p in d.of_type("iam/policy:Policy") if p.name == f"{d.config.name}-nodes-login-node"
    ]
    return {s.get("Sid", ""): s for s in _statements(policy)}


def test_login_nodes_may_scale_the_cluster_only_with_controller_ha(
    deployments: dict[str, Deployed],
) -> None:
    d = deployments["default"]
    name, region = d.config.name, d.config.region
    statements = _login_statements(d)
    launch = statements["ScalingRunInstancesCreateFleet"]
    subnets = {r for r in launch["Resource"] if ":subnet/" in r}
    assert subnets == {
        f"arn:aws:ec2:{region}:*:subnet/{s}" for s in d.network.private_subnet_ids
    }, subnets
    assert statements["ScalingPassClusterRoles"]["Resource"] == (
        f"arn:aws:iam::*:role/parallelcluster/{name}/*"
    )
    assert statements["ScalingClusterTable"]["Resource"].endswith(f":table/parallelcluster-{name}")
    dns = statements["ScalingClusterDnsRecords"]["Condition"]["ForAllValues:StringLike"]
    assert dns["route53:ChangeResourceRecordSetsNormalizedRecordNames"] == [f"*.{name}.pcluster"]
    off = _login_statements(deployments["no-controller-ha"])
    assert not [sid for sid in off if sid.startswith("Scaling")], off


def test_generated_passwords_hold_what_pulumi_random_would_draw(default: Deployed) -> None:
    """The stand-in draws from the inputs the program gives pulumi_random (length, classes,
    minimums, its special set), so the consumers downstream (slurmdbd.conf, database.conf,
    the directory's complexity rules) meet the characters a real deployment's hold."""
    passwords = [
        r for r in default.registered if r.type == "random:index/randomPassword:RandomPassword"
    ]
    assert passwords
    for r in passwords:
        value, inputs = r.outputs["result"], r.inputs
        assert len(value) == int(inputs["length"]), r.urn
        specials = [c for c in value if not c.isalnum()]
        if inputs.get("special"):
            assert set(specials) <= set(SAFE_SPECIALS), r.urn
            assert len(specials) >= int(inputs.get("minSpecial", 0)) >= 1, r.urn
        else:
            assert not specials, r.urn
        # Slurm's config parser ends a line at "#" (parse_config.c): no generated value
        # may hold one, since ParallelCluster writes the accounting password unescaped.
        assert "#" not in value, r.urn
