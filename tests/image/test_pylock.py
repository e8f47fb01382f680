"""The hashed pip lock (image/requirements-jupyter.txt) against the config that builds from it."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, cast

import pytest

from pwbcluster.config import Config
from pwbcluster.stages.image import pylock

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_lock_serves_the_example(config: Config) -> None:
    """The repository's lock pins image.yaml's versions for its Python, every entry hashed."""
    assert pylock.problems(config.model.image, ROOT / "image") == []
    entries = pylock.parse((ROOT / "image" / pylock.LOCK_FILE).read_text(encoding="utf-8"))
    assert entries["jupyterlab"][0] == config.model.image.jupyter.jupyterlab_version
    assert entries["pwb-jupyterlab"][0] == config.model.image.jupyter.extension_version
    assert len(entries) > 2  # the dependencies are locked too, not only the two pins
    assert all(count >= 1 for _, count in entries.values())


def test_lock_is_shipped_and_fingerprinted() -> None:
    listed = (ROOT / "image" / "manifest.txt").read_text(encoding="utf-8").split()
    assert pylock.LOCK_FILE in listed


def test_a_version_bump_without_a_new_lock_is_refused(config: Config, project: Path) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["jupyter"]["jupyterlab_version"] = "4.6.5"
    found = pylock.problems(image, project / "image")
    assert (
        found[0] == "requirements-jupyter.txt pins jupyterlab==4.6.6, image.jupyter asks for 4.6.5"
    )
    assert found[-1] == "regenerate the lock with: invoke image.lock"
    with pytest.raises(pylock.LockError, match=r"asks for 4\.6\.5"):
        pylock.check(image, project / "image")


def test_another_default_python_is_refused(config: Config, project: Path) -> None:
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["python"]["default"] = "3.11.13"
    [problem, _] = pylock.problems(image, project / "image")
    assert (
        problem
        == "requirements-jupyter.txt was resolved for Python 3.12, image.python.default is 3.11.13"
    )


def test_an_unhashed_or_missing_lock_is_refused(config: Config, project: Path) -> None:
    lock = project / "image" / pylock.LOCK_FILE
    lock.write_text(lock.read_text(encoding="utf-8") + "six==1.17.0\n", encoding="utf-8")
    assert "requirements-jupyter.txt: six==1.17.0 has no --hash=sha256" in pylock.problems(
        config.model.image, project / "image"
    )
    lock.unlink()
    [problem] = pylock.problems(config.model.image, project / "image")
    assert problem.endswith(
        "requirements-jupyter.txt is missing (write it with: invoke image.lock)"
    )


def test_the_stage_refuses_a_stale_lock_before_any_upload(config: Config, project: Path) -> None:
    from pwbcluster.contracts import NetworkOutputs
    from pwbcluster.stages.image import service

    lock = project / "image" / pylock.LOCK_FILE
    text = lock.read_text(encoding="utf-8").replace("jupyterlab==4.6.6", "jupyterlab==4.6.4")
    lock.write_text(text, encoding="utf-8")
    network = cast(NetworkOutputs, None)  # refused before the network is read
    with pytest.raises(pylock.LockError, match=r"pins jupyterlab==4\.6\.4"):
        service.prepare(config, network, "ami-0123456789abcdef0")
    assert not (Path(config.build_dir) / service.CONFIG_FILE).exists()


def test_compile_command_targets_the_image_python(config: Config, tmp_path: Path) -> None:
    argv = pylock.compile_command(config.model.image, tmp_path / "in", tmp_path / "out")
    assert argv[:3] == ["uv", "pip", "compile"]
    assert "--generate-hashes" in argv
    assert argv[argv.index("--python-version") + 1] == "3.12"
    assert argv[argv.index("--python-platform") + 1] == "x86_64-manylinux_2_28"


def test_regenerate_writes_the_header_and_checks_the_result(
    config: Config, project: Path, tmp_path: Path
) -> None:
    """A stand-in uv that writes a resolve (the real one needs the index): the written lock
    carries the Python line and is checked, so a resolve missing a pin is an error."""
    body = (
        (ROOT / "image" / pylock.LOCK_FILE).read_text(encoding="utf-8").split("# python: 3.12\n")[1]
    )
    fake = tmp_path / "uv"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'while [[ $# -gt 0 ]]; do [[ "$1" == --output-file ]] && out="$2"; shift; done\n'
        f"cat >\"$out\" <<'EOF'\n{body}EOF\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    (project / "image" / pylock.LOCK_FILE).unlink()
    path = pylock.regenerate(config.model.image, project / "image", uv=str(fake))
    assert path.read_text(encoding="utf-8").startswith(pylock.HEADER.format(python="3.12"))
    image: dict[str, Any] = copy.deepcopy(config.data["image"])
    image["jupyter"]["extension_version"] = "1.2.3"
    with pytest.raises(
        pylock.LockError, match=re.escape("pwb-jupyterlab==1.2.2, image.jupyter asks for 1.2.3")
    ):
        pylock.regenerate(image, project / "image", uv=str(fake))
