"""The invoke tasks as a person runs them: help, exit codes, no tracebacks, files written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pwbcluster.config.reference import write_reference

ROOT = Path(__file__).resolve().parents[2]
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]


def invoke(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "COLUMNS": "200"}
    return subprocess.run(
        [*INVOKE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False
    )


def no_credentials_env(**extra: str) -> dict[str, str]:
    """The environment of a machine with no AWS credentials anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
            "COLUMNS": "200",
            **extra,
        }
    )
    return env


def invoke_without_terminal(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`invoke` with stdin on /dev/null: no terminal to answer a question on."""
    full = env or {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "COLUMNS": "200"}
    return subprocess.run(
        [*INVOKE, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full,
        timeout=600,
        check=False,
    )


def test_list_shows_the_foundation_tasks_with_help() -> None:
    result = invoke("--list")
    assert result.returncode == 0, result.stderr
    for name in ("plan", "up", "down", "status", "preflight", "forget", "config.validate"):
        line = next(
            (ln for ln in result.stdout.splitlines() if ln.strip().startswith(name + " ")), None
        )
        assert line and len(line.split()) > 1, f"{name} has no help line:\n{result.stdout}"


def test_every_flag_has_help_text() -> None:
    for name in ("plan", "up", "down", "status", "preflight", "forget", "config.validate"):
        result = invoke("--help", name)
        assert result.returncode == 0, result.stderr
        options = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("-")]
        assert options, result.stdout
        for line in options:
            assert len(line.split(None, 1)) == 2 and line.split(None, 1)[1].strip(), (
                f"{name}: option without help: {line!r}"
            )


def test_validate_example_exits_zero() -> None:
    result = invoke("config.validate", "--config", "config/example.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_bad_config_exits_one_with_every_problem_and_no_traceback(project: Path) -> None:
    bad = project / "config" / "bad.yaml"
    bad.write_text(
        "deployment:\n  name: bad\n  region: eu-west-1\n  owner_email: x@example.com\n"
        "cluster:\n  queues:\n    - {name: a, instance_type: t3.large, min_count: 0,"
        " max_count: -3}\n  login_nodez: {}\n"
    )
    for task in ("config.validate", "plan", "up", "down", "status"):
        result = invoke(task, "--config", str(bad), cwd=project)
        out = result.stdout + result.stderr
        assert result.returncode == 1, (task, out)
        assert "Traceback" not in out, out
        assert "bad.yaml:7 cluster.queues[0].max_count: -3 is less than the minimum of 0" in out
        assert "bad.yaml:8 cluster.login_nodez: unknown key 'login_nodez'" in out
    assert not (project / "build").exists(), "a bad config must create nothing"


def test_missing_config_file_is_a_clear_error() -> None:
    result = invoke("config.validate", "--config", "config/nope.yaml")
    assert result.returncode == 1
    assert "no such deployment file" in result.stderr and "Traceback" not in result.stderr


def test_plan_writes_the_build_directory(project: Path) -> None:
    shutil.copytree(ROOT / "image", project / "image", dirs_exist_ok=True)
    from pwbcluster.config import load_config
    from pwbcluster.pipeline.plan import STEPS, files_summary, make_plan

    cfg = load_config(project / "config" / "example.yaml")
    # What a sandbox or real run rendered (with the values it got) stays as it is.
    ran = project / "build" / "example" / "cluster-config.yaml"
    ran.parent.mkdir(parents=True)
    ran.write_text("# rendered by a run\n")
    ctx = make_plan(cfg, steps=[s for s in STEPS if s[0] == "render"])
    assert ran.read_text() == "# rendered by a run\n"
    assert not (project / "build" / "example" / "workbench").exists()
    build = project / "build" / "example" / "plan"
    summary = files_summary(ctx)
    assert summary.startswith("Files written under build/example/plan/") and "\n" not in summary
    assert "cluster-config.yaml" in summary and "workbench/ (" in summary, summary
    yaml = YAML(typ="safe")
    cluster = yaml.load((build / "cluster-config.yaml").read_text())
    image = yaml.load((build / "image-config.yaml").read_text())
    assert cluster["Region"] == "eu-west-1" and cluster["HeadNode"]["SharedStorageType"] == "Efs"
    assert [q["Name"] for q in cluster["Scheduling"]["SlurmQueues"]] == ["all", "gpu"]
    assert cluster["LoginNodes"]["Pools"][0]["Count"] == 2
    assert "OnNodeConfigured" in cluster["LoginNodes"]["Pools"][0]["CustomActions"]
    assert image["Build"]["Components"][0]["Value"].startswith("s3://")
    # Placeholders are marked and listed in the file's header.
    text = (build / "cluster-config.yaml").read_text()
    assert "Placeholders" in text and "subnet-planned" in text
    assert ctx.cluster is not None and "subnet-planned0000000003" in ctx.cluster.placeholders
    assert "&id" not in text, "no YAML anchors in rendered files"


def test_generated_reference_and_overrides_schemas_are_current() -> None:
    write_reference(ROOT, check=True)


@pytest.mark.parametrize("schema", sorted((ROOT / "config" / "schema").glob("*.json")))
def test_schemas_are_valid_draft_2020_12(schema: Path) -> None:
    import json

    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(json.loads(schema.read_text()))


def test_yaml_files_point_at_their_schema() -> None:
    expected = {
        "pulumi/auxiliary.yaml": "../config/schema/auxiliary.schema.json",
        "image/image.yaml": "../config/schema/image.schema.json",
        "cluster/cluster.yaml": "../config/schema/cluster.schema.json",
        "config/example.yaml": "schema/deployment.schema.json",
    }
    for rel, schema in expected.items():
        first = (ROOT / rel).read_text().splitlines()[0]
        assert first == f"# yaml-language-server: $schema={schema}", rel
        assert (ROOT / rel).parent.joinpath(schema).resolve().is_file()


def test_a_real_up_refuses_a_world_open_default_before_starting_anything(project: Path) -> None:
    """No world-open default: a real `up` needs allowed_cidr in the deployment file; the
    check runs before any account, credential or CLI is touched."""
    result = invoke("up", "--config", "config/example.yaml", cwd=project)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    assert "cluster.login_nodes.allowed_cidr is not set: say in config/example.yaml" in out
    assert not (project / "build" / "example" / "state.json").exists()


def test_the_sandbox_and_plan_say_what_they_assume_without_allowed_cidr(project: Path) -> None:
    from pwbcluster.config import load_config
    from pwbcluster.pipeline.plan import make_plan, render_step

    config = load_config(project / "config" / "example.yaml")
    notes = "\n".join(make_plan(config, steps=[("render", render_step)]).notes)
    assert (
        "allowed_cidr is not set: ssh and Workbench are rendered open to the VPC only (10.0.0.0/16)"
        in notes
    )
    world = project / "config" / "world.yaml"
    world.write_text(
        (project / "config" / "example.yaml").read_text().replace("name: example", "name: world")
        + "cluster:\n  login_nodes:\n    allowed_cidr: 0.0.0.0/0\n"
    )
    notes = "\n".join(make_plan(load_config(world), steps=[("render", render_step)]).notes)
    assert "allowed_cidr is 0.0.0.0/0: ssh and Workbench are open to the whole internet" in notes


def test_down_shows_its_plan_and_refuses_a_real_deployment_without_confirmation(
    project: Path,
) -> None:
    """Plan, confirm, act: without a terminal and without --yes nothing is removed."""
    from pwbcluster import contracts
    from pwbcluster.config import load_config
    from pwbcluster.pipeline.state import StageRecord, State

    config = load_config(project / "config" / "example.yaml")
    path = config.build_dir / "state.json"
    state = State.load(path, "real")
    network = contracts.planned_network(config.region, config.name)
    state.record("network", StageRecord("done", "fp", contracts.to_dict(network)))
    before = path.read_text()

    dry = invoke("down", "--config", "config/example.yaml", "--dry-run", cwd=project)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Plan: remove from AWS account (region eu-west-1), in this order: network (done)" in (
        dry.stdout
    )
    refused = invoke_without_terminal("down", "--config", "config/example.yaml", cwd=project)
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1, out
    assert "not removing a real deployment without confirmation" in out and "--yes" in out
    assert "Traceback" not in out
    assert path.read_text() == before  # nothing touched


def test_a_short_flag_means_one_thing_in_every_task() -> None:
    """invoke picks short flags per task (the first free letter), so -t once meant --stage,
    --timeout and --strict. Every task now takes its short flags from one table."""
    from pwbcluster.tasks import build_namespace
    from pwbcluster.tasks.common import SHORT_FLAGS

    meaning: dict[str, set[str]] = {}
    ns = build_namespace()
    for name in ns.task_names:
        for arg in ns[name].get_arguments():
            long = next(n for n in arg.names if len(n) > 1)
            for short in (n for n in arg.names if len(n) == 1):
                meaning.setdefault(short, set()).add(long)
    assert meaning, "no task has a short flag"
    for short, longs in meaning.items():
        assert len(longs) == 1, f"-{short} means {sorted(longs)}"
        assert SHORT_FLAGS[next(iter(longs))] == short


def integer_flags() -> list[tuple[str, str]]:
    """(task, flag) for every parameter annotated int or int | None, read from the
    signatures (not from invoke, whose kinds are what is under test)."""
    import inspect
    import typing

    from pwbcluster.tasks import build_namespace

    ns = build_namespace()
    found = []
    for name in sorted(ns.task_names):
        hints = typing.get_type_hints(inspect.unwrap(ns[name].body))
        for param, hint in hints.items():
            if hint is int or hint == (int | None):
                found.append((name, param.replace("_", "-")))
    return found


def test_integer_flags_show_int_and_refuse_a_bad_value_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run in-process through invoke's own Program: parsing is what is under test, and the
    task body (which would need a deployment) never starts for a refused value."""
    from invoke import Program

    from pwbcluster.tasks import build_namespace

    flags = integer_flags()
    assert len(flags) >= 5, flags  # users.* --count/--concurrency/--timeout, prices.refresh
    for name, flag in flags:
        program = Program(namespace=build_namespace(), name="invoke", binary="invoke")
        program.run(["invoke", "--help", name], exit=False)
        shown = capsys.readouterr().out
        assert f"--{flag}=INT" in shown, f"{name} --{flag}:\n{shown}"
        for bad in ("abc", "2.5", "-7"):
            program = Program(namespace=build_namespace(), name="invoke", binary="invoke")
            program.run(["invoke", name, f"--{flag}={bad}"], exit=False)
            said = capsys.readouterr()
            assert f"error: --{flag} '{bad}': give a whole number" in said.err, said
            assert "Traceback" not in said.out + said.err


def test_a_users_mistake_in_a_flag_is_said_plainly_and_starts_nothing(project: Path) -> None:
    """A misspelt check or stage name: one line with the likely name, no traceback, and
    (for `up`) no sandbox server started and no state written."""
    result = invoke(
        "config.validate",
        "--config",
        "config/example.yaml",
        "--skip-check",
        "workbench_licence",
        cwd=project,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "no check named 'workbench_licence' (did you mean 'workbench_license'?)" in out
    result = invoke(
        "up", "--sandbox", "--config", "config/example.yaml", "--stage", "clustr", cwd=project
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "unknown stage(s): clustr (did you mean cluster?); the stages are: cluster," in out
    assert not (project / "build" / "example" / "state.json").exists()
    assert not (project / "build" / "example" / "sandbox.json").exists()


def test_aws_errors_a_person_can_fix_are_one_line() -> None:
    from botocore.exceptions import ClientError, NoCredentialsError

    from pwbcluster.tasks.common import NO_CREDENTIALS, aws_problem

    assert aws_problem(NoCredentialsError()) == NO_CREDENTIALS
    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "gone"}}, "DescribeImages")
    assert (aws_problem(expired) or "").startswith(NO_CREDENTIALS)
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeImages")
    assert aws_problem(denied) == "AWS refused DescribeImages: AccessDenied: no"
    assert aws_problem(ValueError("a bug")) is None  # a bug still shows its traceback


def test_status_says_interrupted_shows_full_values_and_fails(project: Path) -> None:
    """A stage recorded as running while no run holds the lock was interrupted: status
    says so, exits 1, and shows values whole (table and --json)."""
    import json as json_module
    import time

    build = project / "build" / "example"
    build.mkdir(parents=True)
    long_bucket = "example-scripts-" + "0123456789abcdef" * 3
    now = time.time()
    stages = {
        "network": {
            "status": "done",
            "fingerprint": "f",
            "outputs": {"vpc_id": "vpc-1", "bucket_name": long_bucket},
            "started": now - 5,
            "finished": now - 1,
        },
        "services": {"status": "running", "fingerprint": "g", "started": now},
    }
    (build / "state.json").write_text(
        json_module.dumps({"version": 1, "mode": "sandbox", "stages": stages})
    )
    result = invoke("status", "--config", "config/example.yaml", cwd=project)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "interrupted" in out and "stage(s) not finished: services" in out, out
    result = invoke("status", "--config", "config/example.yaml", "--json", cwd=project)
    doc = json_module.loads(result.stdout)
    rows = {row["stage"]: row for row in doc["stages"]}
    assert rows["network"]["outputs"]["bucket_name"] == long_bucket
    assert rows["services"]["status"] == "interrupted"
    assert doc["sandbox_server"] is None and doc["running_now"] is None
    # While a run holds the deployment's lock, the same record is running, not interrupted.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from pwbcluster.pipeline.lock import deployment_lock\n"
            "with deployment_lock(Path(sys.argv[1]), 'up'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(build),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = invoke("status", "--config", "config/example.yaml", "--json", cwd=project)
        doc = json_module.loads(result.stdout)
        assert {r["stage"]: r["status"] for r in doc["stages"]}["services"] == "running"
        assert doc["running_now"] and f"pid {holder.pid}" in doc["running_now"]
    finally:
        holder.kill()
        holder.wait()


def test_preflight_without_credentials_lists_everything_and_writes_the_policy(
    project: Path, tmp_path: Path
) -> None:
    """No credentials, no pulumi CLI on PATH: one run names both, lists what it could not
    check, still writes the deployer policy, exits 1, and shows no traceback."""
    # The tools preflight looks for, minus pulumi: only node's directory on PATH.
    env = no_credentials_env(COLUMNS="250", PATH=str(tmp_path / "bin"))
    (tmp_path / "bin").mkdir()
    node = shutil.which("node") or shutil.which("nodejs")
    if node:
        (tmp_path / "bin" / "node").symlink_to(node)
    policy = tmp_path / "policy.json"
    result = invoke_without_terminal(
        "preflight",
        "--config",
        "config/example.yaml",
        "--policy",
        str(policy),
        cwd=project,
        env=env,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert "pulumi CLI" in out and "AWS credentials" in out and "not checked" in out
    assert "prerequisite(s) missing: pulumi CLI, AWS credentials" in out
    import json

    document = json.loads(policy.read_text())
    actions = {a for statement in document["Statement"] for a in statement["Action"]}
    assert {"ec2:CreateVpc", "rds:CreateDBInstance", "sts:GetCallerIdentity"} <= actions


def test_forget_drops_records_only_when_confirmed_and_touches_nothing_else(
    project: Path,
) -> None:
    import json as json_module

    build = project / "build" / "example"
    build.mkdir(parents=True)
    record = {"status": "done", "fingerprint": "f", "outputs": {"x": 1}}
    stages = {"network": record, "services": {**record, "status": "failed"}}
    state = build / "state.json"
    state.write_text(json_module.dumps({"version": 1, "mode": "real", "stages": stages}))
    before = state.read_bytes()
    args = ("forget", "--config", "config/example.yaml")

    dry = invoke(*args, "--dry-run", cwd=project)
    assert dry.returncode == 0 and "network (done), services (failed)" in dry.stdout, dry
    refused = invoke_without_terminal(*args, cwd=project)
    assert refused.returncode == 1 and "without confirmation" in refused.stderr, refused
    assert "Traceback" not in refused.stdout + refused.stderr
    assert state.read_bytes() == before

    typo = invoke(*args, "--stage", "netwrok", "--yes", cwd=project)
    assert typo.returncode == 1 and "network" in typo.stderr and "Traceback" not in typo.stderr
    assert state.read_bytes() == before

    one = invoke(*args, "--stage", "services", "--yes", cwd=project)
    assert one.returncode == 0, one.stdout + one.stderr
    assert set(json_module.loads(state.read_text())["stages"]) == {"network"}
    everything = invoke(*args, "--yes", cwd=project)
    assert everything.returncode == 0 and not state.exists(), everything


# Tasks left out: they change the toolkit's own files or ParallelCluster's venv on purpose
# (their behaviour is tested where they live).
SELF_CHANGING = {
    "patch.apply",
    "patch.revert",
    "pcluster.setup",
    "image.lock",
    "config.docs",
    "config.catalogue",
    # Stands up namespaces and daemons on the machine, as root (tests/lab runs it, and
    # takes it down again).
    "lab.up",
    # Removes the machine's one lab (the ledger in /run is machine-wide, not the test
    # project's): run here as root it tore down a lab tests/lab was using.
    "lab.down",
}


def test_no_task_shows_a_traceback_without_credentials_or_a_terminal(project: Path) -> None:
    """Every task, run as a newcomer would on a fresh clone: no AWS credentials, nothing
    deployed, no terminal to answer a question. Each either works or says why in a line;
    none prints a traceback. (`plan` is left to its own test: it succeeds here, slowly.)"""
    import inspect
    from concurrent.futures import ThreadPoolExecutor

    from pwbcluster.tasks import build_namespace

    ns = build_namespace()
    names = sorted(ns.task_names)
    assert len(names) > 20, names
    env = no_credentials_env()
    config = str(project / "config" / "example.yaml")

    def run(name: str) -> tuple[str, int, str]:
        task = ns[name]
        args = [name]
        # Not task.get_arguments(): invoke pops each help text as it builds the arguments,
        # so a second call (another test) would find the flags without help.
        if "config" in inspect.signature(task.body).parameters:
            args += ["--config", config]
        result = invoke_without_terminal(*args, cwd=project, env=env)
        return name, result.returncode, result.stdout + result.stderr

    wanted = [n for n in names if n not in SELF_CHANGING and n != "plan"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, wanted))
    for name, code, out in results:
        assert "Traceback" not in out, f"{name}:\n{out}"
        assert code in (0, 1), f"{name} exited {code}:\n{out}"
    assert {"up", "down", "aux.down", "image.list", "users.create", "preflight"} <= set(wanted)
