"""The cluster lab's nodes: head, two login and two compute nodes booting the real scripts.

A node is a network namespace on the lab's bridge (``pwblab-<name>``) plus a mount and
UTS namespace whose root is an overlay: the host's own root as the read-only lower
layer, a tmpfs as the upper one (its "disk"), with its own /proc, /run and /tmp, and the
lab's shared directories bind-mounted where ParallelCluster mounts the file systems. The
host's root is the image: it holds what the AMI would (the aws CLI, psql, Slurm, munge,
sssd, Python), so nothing is installed at boot, as on a real node; a debootstrap root
(``rootfs.py``) lacks the aws CLI and psql and would cost minutes per suite. Everything a
node writes lands in its tmpfs, which vanishes with the node's last process (no mount
outlives ``lab.down``), and the upper layer is exactly "what the node changed", which is
what the second-run digest compares.

The boot follows ParallelCluster's order (aws-parallelcluster-cookbook): the head node
first (init, OnNodeStart, its config: munge key, slurm.conf, slurmctld, the directory
service; OnNodeConfigured), then the login and compute nodes (init with the shared file
systems, OnNodeStart, config: the munge key from shared storage, sssd from the head's
shared sssd.conf; OnNodeConfigured; compute: slurmd in finalize). The custom actions run
as ParallelCluster's custom_action_executor.py runs them: the script fetched from S3 into a
temporary file, made executable and run with the configured Args, with cfn_* variables in
its environment. The parts of ParallelCluster's cookbook are **stand-ins** (``standin`` in
their names and output): they write what the cookbook writes, not more.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pwbcluster.errors import ToolkitError
from pwbcluster.lab import directory
from pwbcluster.lab.network import LAB, Ledger, Net, link_exists, run, stop_pid

if TYPE_CHECKING:
    from pwbcluster.lab.services import Lab

STANDINS = Path(__file__).resolve().parent / "standins"
SHARED = "/opt/parallelcluster/shared"
SHARED_LOGIN = "/opt/parallelcluster/shared_login_nodes"
SLURM_DIR = "/opt/slurm"
SCRIPTS_DIR = "/opt/parallelcluster/scripts"
CUSTOM_ACTION = f"{SCRIPTS_DIR}/pwblab-custom-action-standin"
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a node's own daemons write as they run (logs, caches, queues): not configuration,
# so not part of the "second run changes nothing" digest.
VOLATILE = ("var/log/", "var/spool/", "var/lib/sss/", "var/lib/munge/", "var/cache/",
            "root/.cache/", "var/lib/pwb-ha/applied", "var/lib/private/", "etc/.pwd.lock")  # fmt: skip
SHARED_VOLATILE = ("internal_pcluster_shared/slurm/pwb-ha/state/",
                   "internal_pcluster_shared/slurm/pwb-ha/controllers/")  # fmt: skip
SLURM_TOOLS = ("sbatch", "squeue", "scontrol", "sinfo", "srun", "scancel", "sacct", "salloc")

INIT = r"""
set -o errexit -o nounset -o pipefail
disk=$1 name=$2 ready=$3
shift 3
mount -t tmpfs -o mode=0755,size=1g "pwblab-${name}-disk" "${disk}"
mkdir -p "${disk}/upper" "${disk}/work" "${disk}/root"
mount -t overlay "pwblab-${name}-root" \
  -o "lowerdir=/,upperdir=${disk}/upper,workdir=${disk}/work" "${disk}/root"
r="${disk}/root"
mount -t proc proc "${r}/proc"
mount -t sysfs "pwblab-${name}-sys" "${r}/sys"
mount --rbind /sys/fs/cgroup "${r}/sys/fs/cgroup"
mount --rbind /dev "${r}/dev"
mount -t tmpfs -o mode=0755 "pwblab-${name}-run" "${r}/run"
mount -t tmpfs -o mode=1777 "pwblab-${name}-tmp" "${r}/tmp"
while (($#)); do
  mkdir -p "${r}$2"
  mount --bind "$1" "${r}$2"
  shift 2
done
hostname "${name}"
touch "${r}${ready}"
exec chroot "${r}" /bin/bash -c 'exec -a pwblab-node-standin-init sleep infinity'
"""


@dataclass(frozen=True)
class NodeSpec:
    name: str  # the namespace's suffix: pwblab-<name>
    host: int  # the lab subnet's host number
    kind: str  # cfn_node_type: HeadNode, LoginNode, ComputeFleet
    slurm_name: str = ""

    def address(self, lab: Lab) -> str:
        return lab.net.address(self.host)

    def hostname(self, lab: Lab) -> str:
        """ParallelCluster's EC2 host name: ip-<private address with dashes>."""
        return "ip-" + self.address(lab).replace(".", "-")


SPECS = (
    NodeSpec("head", 20, "HeadNode"),
    NodeSpec("ln1", 21, "LoginNode"),
    NodeSpec("ln2", 22, "LoginNode"),
    NodeSpec("cn1", 31, "ComputeFleet", "all-st-all-t3xlarge-1"),
    NodeSpec("cn2", 32, "ComputeFleet", "all-st-all-t3xlarge-2"),
)
QUEUE = "all"
# The default route's gateway: an address of the lab subnet that nothing holds.
ROUTER = 254


def init_process(name: str) -> str:
    return f"node-{name}-standin-init"


class Node:
    """One booted node: its init process and how to run a command inside it."""

    def __init__(self, lab: Lab, spec: NodeSpec) -> None:
        self.lab, self.spec = lab, spec
        self.disk = lab.workdir / "nodes" / spec.name
        self.netns = lab.net.netns(spec.name)

    def _init(self) -> dict[str, Any]:
        obj = self.lab.ledger.find("process", init_process(self.spec.name))
        if obj is None:
            raise ToolkitError(f"node {self.spec.name} is not booted")
        return obj

    @property
    def pid(self) -> int:
        return int(self._init()["init_pid"])

    @property
    def outer_pid(self) -> int:
        return int(self._init()["pid"])

    def alive(self) -> bool:
        return self.lab.ledger.process_alive(init_process(self.spec.name))

    def path(self, inside: str) -> Path:
        """A path of the node's root, seen from the host (through /proc/<init>/root)."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def upper(self) -> Path:
        """The node's upper layer ("what it changed"), seen from the host."""
        return Path(f"/proc/{self.outer_pid}/root") / str(self.disk).lstrip("/") / "upper"

    def write(self, inside: str, text: str | bytes, mode: int = 0o644, owner: str = "root") -> None:
        path = self.path(inside)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(path, mode)
        shutil.chown(path, owner, owner)

    def env(self, **extra: str) -> dict[str, str]:
        aws = shutil.which("aws")
        path = NODE_PATH + (f":{Path(aws).parent}" if aws else "")
        # The instance role's stand-in: the lab's throw-away keys and endpoint in the
        # environment (a real node gets them from IMDS and the regional endpoints).
        return {"PATH": path, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
                **self.lab.aws_env(), **extra}  # fmt: skip

    def argv(self, argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        environment = [f"{k}={v}" for k, v in (env or self.env()).items()]
        nsenter = ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "-r", "-w", "--"]
        return [*nsenter, "env", "-i", *environment, *argv]

    def run(
        self,
        argv: Sequence[str],
        timeout: float = 300,
        check: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.argv(argv, self.env(**(env or {}))),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise ToolkitError(
                f"{self.spec.name}: {' '.join(argv)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        return done

    def sh(self, script: str, timeout: float = 120, check: bool = True) -> str:
        return self.run(
            ["bash", "-c", f"set -o errexit -o pipefail\n{script}"], timeout, check
        ).stdout

    def workbench_config(self) -> dict[str, bytes]:
        """/etc/rstudio's files (a login node's Workbench configuration)."""
        etc = self.path("/etc/rstudio")
        return {p.name: p.read_bytes() for p in sorted(etc.iterdir()) if p.is_file()}

    def health(self, port: int = 8787) -> tuple[int, str]:
        """What Workbench's /health-check answers on this node: (HTTP status, body)."""
        done = self.run(
            ["curl", "--silent", "--max-time", "10", "--write-out", "\\n%{http_code}",
             f"http://127.0.0.1:{port}/health-check"],
            timeout=30,
        )  # fmt: skip
        body, _, code = done.stdout.rpartition("\n")
        return int(code or 0), body.strip()

    def digest(self) -> dict[str, str]:
        """Every file the node changed (its upper layer) with mode, owner and content
        digest, daemons' logs and caches left out (VOLATILE)."""
        root = self.upper()
        found: dict[str, str] = {}
        for path in sorted(root.rglob("*")):
            rel = str(path.relative_to(root)) + ("/" if path.is_dir() else "")
            if rel.startswith(VOLATILE):
                continue
            found[rel] = _state(path)
        return found


@dataclass
class BootRecord:
    node: str
    seconds: float
    scripts: list[str]


class Cluster:
    """The lab's five nodes, booted against its services (``Lab.up`` first)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.nodes = {spec.name: Node(lab, spec) for spec in SPECS}
        self.bundle_uri = lab.node_env_uri()
        self.config = lab.cluster_config()

    # -- layout -------------------------------------------------------------------------

    def shared_root(self, name: str) -> Path:
        shared = self.lab.ledger.meta.get("shared") or {}
        if name not in shared:
            raise ToolkitError(f"the lab has no shared file system {name!r}: `invoke lab.up`")
        return Path(shared[name]["path"])

    def mounts(self, spec: NodeSpec) -> list[tuple[Path, str]]:
        """(lab directory, mount point) per file system, as ParallelCluster mounts them:
        the internal EFS's shared dir everywhere, shared_login_nodes on head and login
        nodes, /opt/slurm everywhere (mount_internal_use_efs.rb,
        mount_internal_use_ebs.rb), and each SharedStorage at its MountDir."""
        internal = self.shared_root("internal_pcluster_shared")
        out = [(internal / "shared", SHARED), (internal / "slurm", SLURM_DIR)]
        if spec.kind in ("HeadNode", "LoginNode"):
            out.append((internal / "shared_login_nodes", SHARED_LOGIN))
        for fs in self.config.get("SharedStorage") or []:
            out.append((self.shared_root(str(fs["Name"])), str(fs["MountDir"])))
        return out

    def hosts(self) -> str:
        base = str(self.lab.ledger.meta.get("hosts") or "")
        nodes = "".join(
            f"{s.address(self.lab)} {s.hostname(self.lab)} {s.slurm_name}".rstrip() + "\n"
            for s in SPECS
        )
        return "127.0.0.1 localhost\n::1 localhost\n" + base + nodes

    def cfnconfig(self, spec: NodeSpec) -> str:
        """/etc/parallelcluster/cfnconfig as templates/init/cfnconfig.erb writes it."""
        os_name = str((self.config.get("Image") or {}).get("Os", ""))
        user = {"ubuntu2204": "ubuntu", "ubuntu2404": "ubuntu", "ubuntu2004": "ubuntu"}.get(
            os_name, "ec2-user"
        )
        scripts = f"{SCRIPTS_DIR}/fetch_and_run --execute-via-cfnconfig"
        lines = [
            f"stack_name={self.lab.config.name}",
            f'cfn_preinstall="{scripts} -preinstall"',
            "cfn_preinstall_args=()",
            f'cfn_postinstall="{scripts} -postinstall"',
            "cfn_postinstall_args=()",
            f'cfn_postupdate="{scripts} -postupdate"',
            "cfn_postupdate_args=()",
            f"cfn_region={self.lab.config.region}",
            "cfn_scheduler=slurm",
            "cfn_scheduler_slots=vcpus",
            "cfn_instance_slots=1",
            "cfn_ephemeral_dir=/scratch",
            "cfn_ebs_shared_dirs=",
            "cfn_proxy=NONE",
            f"cfn_node_type={spec.kind}",
            f"cfn_cluster_user={user}",
        ]
        if spec.kind == "ComputeFleet":
            head = SPECS[0]
            lines += [
                f"cfn_head_node={head.hostname(self.lab)}",
                f"cfn_head_node_private_ip={head.address(self.lab)}",
                f"cfn_scheduler_queue_name={QUEUE}",
            ]
        if spec.kind == "HeadNode":
            lines.append("cfn_volume=")
        return "\n".join(lines) + "\n"

    def custom_actions(self, spec: NodeSpec) -> dict[str, Any]:
        if spec.kind == "HeadNode":
            return dict(self.config["HeadNode"]["CustomActions"])
        if spec.kind == "LoginNode":
            return dict(self.config["LoginNodes"]["Pools"][0]["CustomActions"])
        queue = next(q for q in self.config["Scheduling"]["SlurmQueues"] if q["Name"] == QUEUE)
        return dict(queue["CustomActions"])

    # -- boot ---------------------------------------------------------------------------

    def start_node(self, spec: NodeSpec) -> Node:
        """EC2's stand-in: the node's namespaces, its overlay root, its mounts."""
        node = self.nodes[spec.name]
        if node.alive():
            return node
        self.lab.namespace(spec.name, spec.host)
        # A VPC subnet has a default route (the scripts find their address from it); here
        # it points at an address no one holds, so nothing leaves the lab's network.
        run(["ip", "-n", node.netns, "route", "replace", "default", "via",
             self.lab.net.address(ROUTER), "dev", "eth0", "onlink"])  # fmt: skip
        self.lab.ledger.directory(node.disk.parent, 0o700)
        self.lab.ledger.directory(node.disk, 0o700)
        ready = "/run/pwblab-node-ready"
        binds: list[str] = []
        for src, dest in self.mounts(spec):
            src.mkdir(parents=True, exist_ok=True)
            binds += [str(src), dest]
        argv = [
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--fork",
            "--kill-child",
            "--",
        ]
        argv += ["bash", "-c", INIT, "pwblab-node-init", str(node.disk), spec.hostname(self.lab)]
        argv += [ready, *binds]
        log = open(node.disk.parent / f"{spec.name}-init.log", "ab")  # noqa: SIM115
        # nsenter, not `ip netns exec`: that one remounts /sys without the cgroup
        # hierarchies slurmd needs; the node mounts its own sysfs and binds them.
        enter = ["nsenter", f"--net=/run/netns/{node.netns}"]
        proc = subprocess.Popen(
            [*enter, *argv],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.lab.ledger.process(init_process(spec.name), proc.pid)
        deadline = time.monotonic() + 20
        child = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ToolkitError(f"node {spec.name}: its root did not mount; see {log.name}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                child = int(
                    Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0]
                )
                if (
                    Path(f"/proc/{child}/root{ready}").exists()
                    and os.readlink(f"/proc/{child}/root") != "/"
                ):
                    break
            time.sleep(0.05)
        else:
            raise ToolkitError(f"node {spec.name}: its root was not ready in 20 s")
        self.lab.ledger.record("process", init_process(spec.name), init_pid=child)
        self._image(node)
        return node

    def _image(self, node: Node) -> None:
        """What the AMI and ParallelCluster's init leave on every node before any script."""
        spec = node.spec
        node.write("/etc/hosts", self.hosts())
        node.write("/etc/hostname", spec.hostname(self.lab) + "\n")
        node.write("/etc/parallelcluster/cfnconfig", self.cfnconfig(spec))
        # The image's RDS CA bundle (database.sh's RDS_CA_PATH): the lab's stand-in CA.
        node.write("/etc/pwbcluster/rds-ca-bundle.pem", Path(self.lab.rds_ca).read_bytes())
        # systemd is not PID 1 here: the stand-in reads the same unit files.
        node.write("/usr/local/sbin/pwblab-systemctl-standin",
                   (STANDINS / "systemctl_standin.py").read_bytes(), 0o755)  # fmt: skip
        node.sh("ln -sfn pwblab-systemctl-standin /usr/local/sbin/systemctl")
        node.write(CUSTOM_ACTION, (STANDINS / "custom_action_standin.sh").read_bytes(), 0o755)
        # No logind without systemd as PID 1 (pam_systemd would wait for it at every
        # session); pam_krb5 is the host's (tests/users), not in ParallelCluster's AMI,
        # where sssd alone authenticates.
        node.run(["pam-auth-update", "--disable", "systemd", "krb5"], check=True)
        # Debian's Slurm, linked where ParallelCluster installs it (/opt/slurm, shared);
        # /etc/slurm points at /opt/slurm/etc so daemons and clients read one slurm.conf.
        node.sh(
            f"mkdir -p {SLURM_DIR}/etc {SLURM_DIR}/bin {SLURM_DIR}/sbin\n"
            f"for t in {' '.join(SLURM_TOOLS)}; do ln -sfn /usr/bin/$t {SLURM_DIR}/bin/$t; done\n"
            f"for t in slurmctld slurmd; do ln -sfn /usr/sbin/$t {SLURM_DIR}/sbin/$t; done\n"
            f"rm -rf /etc/slurm && ln -sfn {SLURM_DIR}/etc /etc/slurm\n"
        )
        if spec.kind == "LoginNode":
            self._workbench_image(node)

    def _workbench_image(self, node: Node) -> None:
        """Workbench's packages are not here: units whose ExecStart is the stand-in."""
        node.write("/usr/local/sbin/pwblab-workbench-standin",
                   (STANDINS / "workbench_standin.py").read_bytes(), 0o755)  # fmt: skip
        node.sh("id rstudio-server >/dev/null 2>&1 || useradd --system --no-create-home "
                "--shell /usr/sbin/nologin rstudio-server")  # fmt: skip
        for unit, role in (("rstudio-server", "rserver"), ("rstudio-launcher", "launcher")):
            node.write(
                f"/lib/systemd/system/{unit}.service",
                f"# pwbcluster lab: a stand-in for Posit Workbench's {unit} unit\n"
                f"[Unit]\nDescription={unit} (workbench-standin)\n\n"
                f"[Service]\nType=simple\n"
                f"ExecStart=/usr/local/sbin/pwblab-workbench-standin {role}\n"
                "Restart=no\n\n[Install]\nWantedBy=multi-user.target\n",
            )

    def custom_action(self, node: Node, event: str) -> str:
        """Run one custom action as custom_action_executor.py does; its stderr."""
        actions = self.custom_actions(node.spec)
        action = actions[event]
        legacy = {"OnNodeStart": "preinstall", "OnNodeConfigured": "postinstall"}[event]
        args = [str(a) for a in action.get("Args") or []]
        env: dict[str, str] = {}
        for name, key in (("OnNodeStart", "preinstall"), ("OnNodeConfigured", "postinstall")):
            entry = actions.get(name) or {}
            env[f"cfn_{key}"] = f'"{entry.get("Script", "")}"'
            env[f"cfn_{key}_args"] = "(" + " ".join(f'"{a}"' for a in entry.get("Args") or []) + ")"
        env["cfn_postupdate"], env["cfn_postupdate_args"] = '""', "()"
        env[f"cfn_{legacy}"] = f'"{action["Script"]}"'
        done = node.run([CUSTOM_ACTION, str(action["Script"]), *args], timeout=900, env=env)
        if done.returncode != 0:
            raise ToolkitError(
                f"node {node.spec.name}: {event} ({action['Script']}) failed "
                f"({done.returncode}):\n{done.stderr.strip()[-1500:]}"
            )
        return done.stderr

    def boot(self, spec: NodeSpec) -> BootRecord:
        started = time.perf_counter()
        node = self.start_node(spec)
        logs = [self.custom_action(node, "OnNodeStart")]
        self._config(node)
        logs.append(self.custom_action(node, "OnNodeConfigured"))
        self._finalize(node)
        return BootRecord(spec.name, time.perf_counter() - started, logs)

    def login_load_balancer(self) -> str:
        """The login pool's network load balancer ParallelCluster creates, tagged with the
        cluster's name (login_lb_dns in cluster/lib/workbench.sh finds it by that tag),
        in the lab's moto: a **stand-in** record only (its DNS name resolves nowhere
        here; the lab's nodes are reached at their own addresses)."""
        elb = self.lab.client("elbv2")
        name = f"{self.lab.config.name}-login"[:32]
        for lb in elb.describe_load_balancers()["LoadBalancers"]:
            if lb["LoadBalancerName"] == name:
                return str(lb["DNSName"])
        pool = self.config["LoginNodes"]["Pools"][0]
        cluster = next(
            line.split("=", 1)[1]
            for line in self.lab.node_env().decode().splitlines()
            if line.startswith("CLUSTER_NAME=")
        )
        made = elb.create_load_balancer(
            Name=name,
            Type="network",
            Scheme="internet-facing",
            Subnets=list(pool["Networking"]["SubnetIds"]),
            Tags=[{"Key": "parallelcluster:cluster-name", "Value": cluster}],
        )
        return str(made["LoadBalancers"][0]["DNSName"])

    def up(self, progress: Any = None) -> list[BootRecord]:
        """Boot the head node, then the login and compute nodes (in parallel, as
        ParallelCluster launches them once the head's wait condition is signalled)."""
        say = progress or (lambda _: None)
        say("nodes: head node (init, OnNodeStart, config, OnNodeConfigured)...")
        records = [self.boot(SPECS[0])]
        say(f"nodes: head ready ({records[0].seconds:.1f} s); login and compute nodes...")
        self.login_load_balancer()
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = {s.name: pool.submit(self.boot, s) for s in SPECS[1:]}
            for name, future in futures.items():
                records.append(future.result())
                say(f"nodes: {name} ready ({records[-1].seconds:.1f} s)")
        return records

    def remove(self, name: str) -> None:
        """Take one node away as an instance termination does: every process in its
        namespace killed (its mounts go with the last), its namespace and veth deleted."""
        node, ledger = self.nodes[name], self.lab.ledger
        obj = ledger.find("process", init_process(name))
        if obj is not None:
            stop_pid(int(obj["pid"]), obj.get("starttime"), grace=3, sig=signal.SIGKILL)
            ledger.forget("process", obj["name"])
        for pid in run(["ip", "netns", "pids", node.netns], check=False).split():
            stop_pid(int(pid), grace=3, sig=signal.SIGKILL)
        run(["ip", "netns", "del", node.netns], check=False)
        ledger.forget("netns", node.netns)
        veth = self.lab.net.veth(name)
        if link_exists(veth):
            run(["ip", "link", "del", veth], check=False)
        ledger.forget("link", veth)

    def shared_digest(self) -> dict[str, str]:
        """The shared file systems' files as digest() has a node's (Slurm's and the HA
        reconciler's running state left out)."""
        found: dict[str, str] = {}
        for name, fs in sorted((self.lab.ledger.meta.get("shared") or {}).items()):
            root = Path(fs["path"])
            for path in sorted(root.rglob("*")):
                rel = f"{name}/{path.relative_to(root)}"
                if rel.startswith(SHARED_VOLATILE) or "/lab-job-" in rel:
                    continue
                found[rel] = _state(path)
        return found

    def rerun(self, only: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Every node's scripts again (or ``only`` these nodes'), in boot order; per node
        (and "shared"), the files whose content, mode or owner changed."""
        changed: dict[str, list[str]] = {}
        shared_before = self.shared_digest()

        def again(spec: NodeSpec) -> list[str]:
            node = self.nodes[spec.name]
            before = node.digest()
            for event in ("OnNodeStart", "OnNodeConfigured"):
                self.custom_action(node, event)
            return _differences(before, node.digest())

        specs = [s for s in SPECS if only is None or s.name in only]
        if specs and specs[0].kind == "HeadNode":
            head = specs.pop(0)
            changed[head.name] = again(head)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for spec, result in zip(specs, pool.map(again, specs), strict=True):
                changed[spec.name] = result
        changed["shared"] = _differences(shared_before, self.shared_digest())
        return changed

    # -- ParallelCluster's cookbook, stood in for ---------------------------------------

    def _config(self, node: Node) -> None:
        spec = node.spec
        if spec.kind == "HeadNode":
            self._munge_head(node)
            self._slurm_conf(node)
            configure_directory_head(self, node)
            node.run(["systemctl", "start", "munge"], check=True)
            node.sh("mkdir -p /var/spool/slurm.state && chown slurm: /var/spool/slurm.state")
            node.run(["systemctl", "start", "slurmctld"], check=True)
        else:
            shared = SHARED if spec.kind == "ComputeFleet" else SHARED_LOGIN
            # helpers.rb setup_munge_key: copy from the shared dir, munge-owned, 0600.
            node.sh(
                f"cp {shared}/.munge/.munge.key /etc/munge/munge.key\n"
                "chown munge:munge /etc/munge/munge.key\nchmod 0600 /etc/munge/munge.key"
            )
            node.run(["systemctl", "start", "munge"], check=True)
            configure_directory_other(self, node)

    def _finalize(self, node: Node) -> None:
        spec = node.spec
        if spec.kind == "ComputeFleet":
            node.write("/etc/default/slurmd", f'SLURMD_OPTIONS="-N {spec.slurm_name}"\n')
            node.sh("mkdir -p /var/spool/slurmd")
            node.run(["systemctl", "start", "slurmd"], check=True)

    def _munge_head(self, node: Node) -> None:
        """munge_key_manager.rb: a key in /etc/munge, copied to both shared dirs (0700,
        0600)."""
        node.sh(
            "if [[ ! -s /etc/munge/munge.key ]]; then\n"
            "  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none\n"
            "  chown munge:munge /etc/munge/munge.key; chmod 0600 /etc/munge/munge.key\nfi\n"
            f"for d in {SHARED} {SHARED_LOGIN}; do\n"
            "  mkdir -p $d/.munge; cp /etc/munge/munge.key $d/.munge/.munge.key\n"
            "  chmod 0700 $d/.munge; chmod 0600 $d/.munge/.munge.key\ndone"
        )

    def _slurm_conf(self, node: Node) -> None:
        """slurm.conf shaped like ParallelCluster's (its include names the controller and
        the nodes), reduced to the plugins that run here (no cgroups, no accounting)."""
        lab, head = self.lab, SPECS[0]
        computes = [s for s in SPECS if s.kind == "ComputeFleet"]
        node.write(
            f"{SLURM_DIR}/etc/slurm.conf",
            "# Shaped like ParallelCluster's /opt/slurm/etc/slurm.conf (the cluster lab)\n"
            f"ClusterName={lab.config.name}\nSlurmUser=slurm\n"
            "SlurmctldPort=6820-6829\nSlurmdPort=6818\nAuthType=auth/munge\nCredType=cred/munge\n"
            "StateSaveLocation=/var/spool/slurm.state\nSlurmdSpoolDir=/var/spool/slurmd\n"
            "SlurmctldPidFile=/run/slurmctld.pid\nSlurmdPidFile=/run/slurmd.pid\n"
            "SlurmctldLogFile=/var/log/slurm/slurmctld.log\nSlurmdLogFile=/var/log/slurm/slurmd.log\n"
            "SlurmctldTimeout=300\nSlurmdTimeout=300\nReturnToService=2\nMpiDefault=none\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherType=jobacct_gather/none\nSelectType=select/cons_tres\n"
            "include slurm_parallelcluster.conf\n",
        )
        nodes = "".join(
            f"NodeName={s.slurm_name} NodeAddr={s.address(lab)} NodeHostname={s.hostname(lab)} "
            "CPUs=1 State=UNKNOWN\n"
            for s in computes
        )
        node.write(
            f"{SLURM_DIR}/etc/slurm_parallelcluster.conf",
            f"SlurmctldHost={head.hostname(lab)}({head.address(lab)})\n{nodes}"
            f"PartitionName={QUEUE} Nodes={','.join(s.slurm_name for s in computes)} "
            "Default=YES MaxTime=INFINITE State=UP\n",
        )
        node.sh("mkdir -p /var/log/slurm && chown slurm: /var/log/slurm")


def _state(path: Path) -> str:
    st = path.lstat()
    what = f"{st.st_mode:o} {st.st_uid}:{st.st_gid}"
    if path.is_symlink():
        what += f" -> {os.readlink(path)}"
    elif path.is_file():
        what += " " + hashlib.sha256(path.read_bytes()).hexdigest()
    return what


def _differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def node_states(ledger: Any) -> dict[str, str]:
    """Per booted node: its address, type and whether its init still runs."""
    states = {}
    for spec in SPECS:
        if ledger.has("process", init_process(spec.name)):
            up = "running" if ledger.process_alive(init_process(spec.name)) else "stopped"
            states[spec.name] = (
                f"{spec.kind} {ledger.net.address(spec.host)} "
                f"({'ip-' + ledger.net.address(spec.host).replace('.', '-')}): {up}"
            )
    return states


def status(net: Net = LAB) -> dict[str, Any]:
    """The lab's status (services.status) with each booted node's."""
    from pwbcluster.lab import services

    return {**services.status(net), "nodes": node_states(Ledger(net))}


def boot(lab: Lab, progress: Any = None) -> list[BootRecord]:
    return Cluster(lab).up(progress)


# The directory on a node, as the cookbook's DirectoryService recipe does it
# (directory.py renders sssd.conf).
def directory_settings(cluster: Cluster) -> dict[str, str] | None:
    found = cluster.config.get("DirectoryService")
    return dict(found) if found else None


def configure_directory_head(cluster: Cluster, node: Node) -> None:
    ds = directory_settings(cluster)
    if ds is None:
        return
    # The cookbook reads the secret on the node, with the head node's instance role.
    password = node.run(
        ["aws", "secretsmanager", "get-secret-value", "--secret-id", ds["PasswordSecretArn"],
         "--region", cluster.lab.config.region, "--query", "SecretString", "--output", "text"],
        check=True,
    ).stdout.strip()  # fmt: skip
    node.write(
        directory.SSSD_CONF, directory.render(directory.domain_properties(ds, password)), 0o600
    )
    node.sh(
        f"for d in {SHARED}/directory_service {SHARED_LOGIN}/directory_service; do\n"
        f"  mkdir -p $d && chmod 0600 $d && cp {directory.SSSD_CONF} $d/sssd.conf\ndone"
    )
    restart_sssd(node)


def configure_directory_other(cluster: Cluster, node: Node) -> None:
    if directory_settings(cluster) is None:
        return
    source = SHARED_LOGIN if node.spec.kind == "LoginNode" else SHARED
    node.sh(
        f"cp {source}/directory_service/sssd.conf {directory.SSSD_CONF}\nchmod 0600 {directory.SSSD_CONF}"
    )
    restart_sssd(node)


def restart_sssd(node: Node) -> None:
    # system_authentication (partial/_system_authentication_debian.rb): pam_mkhomedir.
    node.run(["pam-auth-update", "--enable", "mkhomedir"], check=True)
    node.run(["systemctl", "restart", "sssd"], check=True)
