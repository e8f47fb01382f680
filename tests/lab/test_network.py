"""The lab's ledger: a crashed ``up`` leaves nothing that ``down`` cannot find.

A child process makes a bridge, a namespace with an address and a process in it, then
dies by SIGKILL mid-way (no clean-up code runs); a new ``Ledger`` read from the file
removes all of it. Runs on its own names (pwblabt-*, bridge pwblabt0, 10.78.8.192/26),
not the cluster lab's, so it never touches a lab a person has up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pwbcluster.lab.network import RUN_DIR, Ledger, Net, alive, leftovers

NET = Net(prefix="pwblabt", bridge="pwblabt0", subnet="10.78.8.192/26")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root]

CRASHING_UP = """
import os, signal, subprocess, sys
from pwbcluster.lab.network import Ledger, Net
net = Net(prefix="pwblabt", bridge="pwblabt0", subnet="10.78.8.192/26")
ledger = Ledger(net)
ledger.directory(__import__("pathlib").Path(sys.argv[1]))
ns = ledger.namespace("a", [net.address(10)], hosts="10.78.8.202 x.example\\n")
proc = subprocess.Popen(ledger.exec(ns, ["sleep", "300"]), start_new_session=True,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ledger.process("sleeper", proc.pid)
print(proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def clean() -> object:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces and a bridge); CI runs as root")
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        pytest.skip("needs `ip netns` (iproute2) with network-namespace support")
    Ledger(NET).teardown()
    yield
    Ledger(NET).teardown()


def test_down_after_a_crashed_up_removes_everything(clean: object, tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_UP, str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr
    sleeper = int(done.stdout.split()[0])
    assert alive(sleeper), "the process started in the namespace outlives the crashed up"
    found = leftovers(NET)
    assert "netns pwblabt-a" in found and "link pwblabt0" in found, found
    assert work.is_dir() and (RUN_DIR / "pwblabt.json").exists()

    removed = Ledger(NET).teardown()

    assert any(r.startswith("process sleeper") for r in removed), removed
    assert leftovers(NET) == []
    assert not work.exists()
    deadline = time.monotonic() + 5
    while alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(sleeper)
    assert Ledger(NET).teardown() == [], "a second down finds nothing to do"


def test_up_twice_makes_each_object_once(clean: object) -> None:
    ledger = Ledger(NET)
    for _ in range(2):
        ledger.namespace("b", [NET.address(11)])
    kinds = [(o["kind"], o["name"]) for o in Ledger(NET).objects]
    assert len(kinds) == len(set(kinds)) == 3, kinds
    addrs = subprocess.run(
        ["ip", "-n", "pwblabt-b", "-o", "addr", "show", "dev", "eth0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert addrs.count(f"{NET.address(11)}/26") == 1
