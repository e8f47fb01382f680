#!/usr/bin/python3
"""systemctl-standin: the cluster lab's stand-in for systemd inside a lab node.

A lab node is a mount and network namespace, not a machine: systemd is not its PID 1.
The node scripts call ``systemctl`` (start, restart, enable --now, is-active, stop,
daemon-reload); this stand-in reads the same unit files systemd would (/etc/systemd/system,
/run/systemd/system, /lib/systemd/system) and runs what they say: ExecStartPre/ExecStart
with Environment=, EnvironmentFile=, User=, Group=, RuntimeDirectory=, Type= simple,
exec, notify (taken as started once the process lives 1 s), forking (PIDFile=) and
oneshot (RemainAfterExit=), Restart= and RestartSec=, ConditionPathExists=; .timer units
(OnBootSec=, OnActiveSec=, OnUnitActiveSec=) and .path units (PathChanged=,
PathModified=, polled each second) start their service as systemd would.

It cannot: cgroups (KillMode is "the main process"), socket activation, dependencies
(After=/Wants= are not followed: the lab starts units in the order the scripts ask),
sd_notify readiness, and journald (each unit logs to /var/log/pwblab-units/UNIT.log).
An unknown unit or option it cannot honour is an error, never a silent success.
Stdlib only: it runs with the node's /usr/bin/python3.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

NAME = "systemctl-standin"
STATE = Path("/run/pwblab-systemctl-standin")
LOGS = Path("/var/log/pwblab-units")
UNIT_DIRS = [Path(p) for p in ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system")]
SUPPORTED_TYPES = {"simple", "exec", "notify", "forking", "oneshot"}


def say(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr)


def unit_name(name: str) -> str:
    return name if re.search(r"\.(service|timer|path|target|socket)$", name) else f"{name}.service"


def find_unit(name: str) -> Path | None:
    for d in UNIT_DIRS:
        if (d / name).is_file():
            return d / name
    return None


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    doc: dict[str, dict[str, list[str]]] = {}
    section = ""
    text = path.read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            doc.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        values = doc.setdefault(section, {}).setdefault(key.strip(), [])
        if value.strip() == "" and key.strip().startswith("Exec"):
            values.clear()
        else:
            values.append(value.strip())
    return doc


def first(doc: dict[str, dict[str, list[str]]], section: str, key: str, default: str = "") -> str:
    values = doc.get(section, {}).get(key) or []
    return values[-1] if values else default


def seconds(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)\s*(ms|s|sec|min|m|h)?", text):
        factor = {"ms": 0.001, "min": 60, "m": 60, "h": 3600}.get(unit, 1)
        total += float(number) * factor
    return total


def environment(doc: dict[str, dict[str, list[str]]]) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    for line in doc.get("Service", {}).get("Environment", []):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value
    for entry in doc.get("Service", {}).get("EnvironmentFile", []):
        optional = entry.startswith("-")
        path = Path(entry.lstrip("-"))
        if not path.is_file():
            if optional:
                continue
            raise SystemExit(f"[{NAME}] EnvironmentFile {path} is missing")
        for raw in path.read_text().splitlines():
            raw = raw.strip()
            if not raw or raw.startswith("#") or "=" not in raw:
                continue
            key, _, value = raw.partition("=")
            env[key.strip()] = " ".join(shlex.split(value)) if value.strip() else ""
    return env


def command(line: str, env: dict[str, str]) -> tuple[list[str], bool]:
    """ExecStart's argv after systemd's expansion ($VAR split, ${VAR} one word); and
    whether a failure is ignored ('-' prefix)."""
    ignore = False
    while line and line[0] in "-@+!:":
        ignore = ignore or line[0] == "-"
        line = line[1:]
    argv: list[str] = []
    for word in shlex.split(line):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
            continue
        argv.append(
            re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word)
        )
    return argv, ignore


def conditions_met(doc: dict[str, dict[str, list[str]]]) -> bool:
    checks = doc.get("Unit", {})
    triggering: list[bool] = []
    plain: list[bool] = []
    for key, test in (
        ("ConditionPathExists", os.path.exists),
        ("ConditionDirectoryNotEmpty", lambda p: os.path.isdir(p) and bool(os.listdir(p))),
    ):
        for value in checks.get(key, []):
            negate = "!" in value[:2]
            trig = value.startswith("|")
            path = value.lstrip("|!")
            ok = bool(test(path)) != negate
            (triggering if trig else plain).append(ok)
    return all(plain) and (not triggering or any(triggering))


def demote(doc: dict[str, dict[str, list[str]]]):
    user = first(doc, "Service", "User")
    group = first(doc, "Service", "Group")
    if not user and not group:
        return None
    entry = pwd.getpwnam(user) if user else None
    gid = grp.getgrnam(group).gr_gid if group else (entry.pw_gid if entry else None)

    def switch() -> None:
        if gid is not None:
            os.setgid(gid)
        if entry is not None:
            os.initgroups(entry.pw_name, gid if gid is not None else entry.pw_gid)
            os.setuid(entry.pw_uid)

    return switch


def runtime_dirs(doc: dict[str, dict[str, list[str]]]) -> None:
    user = first(doc, "Service", "User")
    mode = int(first(doc, "Service", "RuntimeDirectoryMode", "0755"), 8)
    for name in " ".join(doc.get("Service", {}).get("RuntimeDirectory", [])).split():
        path = Path("/run") / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


def active(unit: str) -> bool:
    if (STATE / f"{unit}.oneshot").exists():
        return True
    sup = read_pid(STATE / f"{unit}.sup")
    return sup is not None and alive(sup) and (STATE / f"{unit}.up").exists()


# -- the supervisor (one process per started unit, in the background) -----------------


def supervise(unit: str) -> None:
    path = find_unit(unit)
    assert path is not None
    doc = parse(path)
    log = open(LOGS / f"{unit}.log", "ab", buffering=0)  # noqa: SIM115
    stopping = False
    main_pid: list[int] = []

    def on_term(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in main_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    if unit.endswith(".timer"):
        supervise_timer(unit, doc, lambda: stopping)
        return
    if unit.endswith(".path"):
        supervise_path(unit, doc, lambda: stopping)
        return
    kind = first(doc, "Service", "Type", "simple")
    restart = first(doc, "Service", "Restart", "no")
    delay = seconds(first(doc, "Service", "RestartSec", "0.1"))
    pidfile = first(doc, "Service", "PIDFile")
    while not stopping:
        env = environment(doc)
        runtime_dirs(doc)
        for line in doc.get("Service", {}).get("ExecStartPre", []):
            argv, ignore = command(line, env)
            if (
                subprocess.run(
                    argv, env=env, stdout=log, stderr=log, preexec_fn=demote(doc)
                ).returncode
                and not ignore
            ):
                (STATE / f"{unit}.failed").write_text("ExecStartPre failed\n")
                return
        argv, _ = command(first(doc, "Service", "ExecStart"), env)
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=demote(doc)
        )
        pid = proc.pid
        if kind == "forking":
            code = proc.wait()
            if code != 0:
                (STATE / f"{unit}.failed").write_text(f"ExecStart exited {code}\n")
                return
            found = read_pid(Path(pidfile)) if pidfile else None
            if found is None:
                (STATE / f"{unit}.failed").write_text("forking unit wrote no PIDFile\n")
                return
            pid = found
        main_pid[:] = [pid]
        (STATE / f"{unit}.main").write_text(f"{pid}\n")
        (STATE / f"{unit}.up").write_text("")
        code = 0
        while alive(pid):
            if kind != "forking":
                with contextlib.suppress(ChildProcessError):
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        code = os.waitstatus_to_exitcode(status)
                        break
            time.sleep(0.2)
        (STATE / f"{unit}.up").unlink(missing_ok=True)
        if stopping:
            break
        clean = code == 0
        killed = code < 0 and -code not in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGPIPE,
        )
        again = (
            restart == "always"
            or (restart == "on-failure" and not clean)
            or (restart in ("on-abnormal", "on-abort") and killed)
        )
        log.write(
            f"[{NAME}] {unit}: main process {pid} exited ({code}); restart={restart}\n".encode()
        )
        if not again:
            (STATE / f"{unit}.failed").write_text(f"exited {code}\n")
            return
        time.sleep(delay)


def supervise_timer(unit: str, doc: dict[str, dict[str, list[str]]], stopping) -> None:
    target = first(doc, "Timer", "Unit", unit.removesuffix(".timer") + ".service")
    boot = seconds(first(doc, "Timer", "OnBootSec") or first(doc, "Timer", "OnActiveSec") or "0")
    every = seconds(
        first(doc, "Timer", "OnUnitActiveSec") or first(doc, "Timer", "OnUnitInactiveSec") or "0"
    )
    if not every and not boot:
        raise SystemExit(
            f"[{NAME}] {unit}: only OnBootSec/OnActiveSec/OnUnitActiveSec are supported"
        )
    (STATE / f"{unit}.up").write_text("")
    wait = boot
    while not stopping():
        end = time.monotonic() + wait
        while time.monotonic() < end and not stopping():
            time.sleep(0.2)
        if stopping():
            break
        start(target, wait_ready=True)
        if not every:
            break
        wait = every


def supervise_path(unit: str, doc: dict[str, dict[str, list[str]]], stopping) -> None:
    target = first(doc, "Path", "Unit", unit.removesuffix(".path") + ".service")
    watched = doc.get("Path", {}).get("PathChanged", []) + doc.get("Path", {}).get(
        "PathModified", []
    )
    if not watched:
        raise SystemExit(f"[{NAME}] {unit}: only PathChanged=/PathModified= are supported")

    def stamp() -> list[float | None]:
        out: list[float | None] = []
        for p in watched:
            try:
                out.append(os.stat(p).st_mtime)
            except OSError:
                out.append(None)
        return out

    (STATE / f"{unit}.up").write_text("")
    seen = stamp()
    while not stopping():
        time.sleep(1)
        now = stamp()
        if now != seen:
            seen = now
            start(target, wait_ready=True, again=True)


# -- verbs ------------------------------------------------------------------------------


def start(unit: str, wait_ready: bool = True, again: bool = False) -> int:
    path = find_unit(unit)
    if path is None:
        say(f"Unit {unit} not found (no unit file in {', '.join(map(str, UNIT_DIRS))})")
        return 5
    doc = parse(path)
    if not conditions_met(doc):
        say(f"{unit}: a Condition is not met; not started (as systemd)")
        return 0
    if unit.endswith(".target"):
        return 0
    kind = first(doc, "Service", "Type", "simple")
    if unit.endswith(".service") and kind not in SUPPORTED_TYPES:
        say(f"{unit}: Type={kind} is not supported by the stand-in")
        return 1
    if active(unit) and not (again and kind == "oneshot"):
        return 0
    (STATE / f"{unit}.failed").unlink(missing_ok=True)
    if unit.endswith(".service") and kind == "oneshot":
        env = environment(doc)
        runtime_dirs(doc)
        with open(LOGS / f"{unit}.log", "ab") as log:
            for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
                for line in doc.get("Service", {}).get(key, []):
                    argv, ignore = command(line, env)
                    code = subprocess.run(
                        argv, env=env, stdout=log, stderr=log, preexec_fn=demote(doc)
                    ).returncode
                    if code and not ignore:
                        say(f"{unit}: {key} failed ({code}); see {LOGS / (unit + '.log')}")
                        return 1
        if first(doc, "Service", "RemainAfterExit", "no") in ("yes", "true", "1"):
            (STATE / f"{unit}.oneshot").write_text("")
        return 0
    sup = subprocess.Popen(
        [sys.executable, os.path.realpath(__file__), "__supervise", unit],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    (STATE / f"{unit}.sup").write_text(f"{sup.pid}\n")
    if not wait_ready:
        return 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (STATE / f"{unit}.failed").exists() or sup.poll() is not None:
            break
        if (STATE / f"{unit}.up").exists():
            # No sd_notify here: a unit counts as started when it still runs a second later.
            time.sleep(1)
            if active(unit):
                return 0
            break
        time.sleep(0.1)
    say(f"{unit}: failed to start; last lines of {LOGS / (unit + '.log')}:")
    with contextlib.suppress(OSError):
        for line in (LOGS / f"{unit}.log").read_text(errors="replace").splitlines()[-5:]:
            say(f"  {line}")
    return 1


def stop(unit: str) -> int:
    (STATE / f"{unit}.oneshot").unlink(missing_ok=True)
    sup = read_pid(STATE / f"{unit}.sup")
    if sup is None or not alive(sup):
        return 0
    os.kill(sup, signal.SIGTERM)
    main = read_pid(STATE / f"{unit}.main")
    deadline = time.monotonic() + 30
    while (alive(sup) or (main and alive(main))) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in (main, sup):
        if pid and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (STATE / f"{unit}.up").unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "enabled").mkdir(exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    if argv[:1] == ["__supervise"]:
        supervise(argv[1])
        return 0
    quiet = "--quiet" in argv or "-q" in argv
    now = "--now" in argv
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        say("usage: systemctl VERB [UNIT...]")
        return 1
    verb, units = words[0], [unit_name(u) for u in words[1:]]
    if verb in ("daemon-reload", "reset-failed"):
        return 0
    code = 0
    for unit in units:
        if verb in ("start", "restart", "try-restart", "reload-or-restart") or (
            verb == "enable" and now
        ):
            if verb not in ("start", "enable"):
                stop(unit)
            if verb == "enable":
                (STATE / "enabled" / unit).write_text("")
            code = code or start(unit)
        elif verb == "enable":
            if find_unit(unit) is None:
                say(f"Unit {unit} not found")
                code = code or 1
            else:
                (STATE / "enabled" / unit).write_text("")
        elif verb == "disable":
            (STATE / "enabled" / unit).unlink(missing_ok=True)
            if now:
                stop(unit)
        elif verb == "stop":
            stop(unit)
        elif verb == "reload":
            main_pid = read_pid(STATE / f"{unit}.main")
            if main_pid is None or not alive(main_pid):
                say(f"{unit} is not active, cannot reload")
                code = code or 1
            else:
                os.kill(main_pid, signal.SIGHUP)
        elif verb == "is-active":
            state = (
                "active"
                if active(unit)
                else ("failed" if (STATE / f"{unit}.failed").exists() else "inactive")
            )
            if not quiet:
                print(state)
            code = code or (0 if state == "active" else 3)
        elif verb == "is-enabled":
            enabled = (STATE / "enabled" / unit).exists()
            if not quiet:
                print("enabled" if enabled else "disabled")
            code = code or (0 if enabled else 1)
        elif verb == "status":
            print(f"{unit} ({NAME}): {'active' if active(unit) else 'inactive'}")
            code = code or (0 if active(unit) else 3)
        else:
            say(f"verb '{verb}' is not supported by the stand-in")
            return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
