"""The offline catalogues: lookups, did-you-mean, and the vendors' lists parsed and merged."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Context, Exit

from pwbcluster.config import catalogue as cat
from pwbcluster.config.catalogue import refresh
from pwbcluster.tasks import config as config_tasks

FIXTURES = Path(__file__).with_name("catalogue_fixtures")


def test_instance_types_come_from_botocores_ec2_model_and_name_it() -> None:
    types = cat.instance_types()
    assert types.source.startswith("botocore ") and "shape InstanceType" in types.source
    # The project's own types, and a few of every kind, are in; typos are not.
    for name in ("t3.medium", "t3.xlarge", "c5.2xlarge", "g4dn.xlarge", "p5.48xlarge"):
        assert name in types.ec2, name
    for name in ("t3.mega", "t3.xxlarge", "g4dn.large", "c5.2xlarg"):
        assert name not in types.ec2, name
    assert "db.t4g.small" in types.rds and types.rds_source.startswith("pulumi_aws ")


def test_the_checked_in_list_matches_the_installed_botocore() -> None:
    """The file is what `invoke config.catalogue --instance-types` writes from botocore."""
    fresh = refresh.instance_types_catalogue()
    stored = json.loads(cat.INSTANCE_TYPES_FILE.read_text(encoding="utf-8"))
    assert stored["ec2_source"] == fresh["ec2_source"], (
        "run invoke config.catalogue --instance-types"
    )
    assert stored["ec2"] == fresh["ec2"]
    assert stored["rds"] == fresh["rds"]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("t3.mega", "t3.medium"),
        ("t3.medum", "t3.medium"),
        ("c5.2xlarg", "c5.2xlarge"),
        ("cn5.xlarge", "c5n.xlarge"),
        ("g4nd.xlarge", "g4dn.xlarge"),
    ],
)
def test_did_you_mean_finds_the_type_meant(typo: str, meant: str) -> None:
    assert meant in cat.suggest(typo, cat.instance_types().ec2)


def test_a_size_typo_lists_its_familys_sizes_in_order() -> None:
    sizes = cat.family_sizes("t3.mega", cat.instance_types().ec2)
    assert sizes == ["nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"]


def test_versions_catalogue_is_dated_and_sourced_per_kind() -> None:
    listed = cat.versions()
    assert listed.retrieved
    assert set(listed.kinds) == set(cat.VERSION_KINDS)
    raw = json.loads(cat.VERSIONS_FILE.read_text(encoding="utf-8"))
    for name, kind in listed.kinds.items():
        assert kind.source.startswith("https://"), name
        assert raw["kinds"][name]["provenance"], f"{name}: say where its entries were confirmed"
    assert listed.kinds["r"].source == "https://cdn.posit.co/r/versions.json"
    assert listed.kinds["python"].source == "https://cdn.posit.co/python/versions.json"


def test_the_projects_pins_are_in_the_catalogue() -> None:
    root = Path(__file__).resolve().parents[2]
    from ruamel.yaml import YAML

    image = YAML(typ="safe").load((root / "image" / "image.yaml").read_text())
    kinds = cat.versions().kinds
    assert set(image["r"]["versions"]) <= set(kinds["r"].versions)
    assert set(image["python"]["versions"]) <= set(kinds["python"].versions)
    assert image["quarto"]["version"] in kinds["quarto"].versions
    assert image["workbench"]["version"] in kinds["workbench"].versions


@pytest.mark.parametrize(
    ("version", "first"),
    [
        ("4.5.9", "4.5.3"),  # same series: its newest patch first
        ("4.9.9", "4.6.1"),  # unknown series: the newest of the major version
        ("5.0.0", None),  # unknown major: close matches or the newest overall
    ],
)
def test_version_suggestions_prefer_the_same_series(version: str, first: str | None) -> None:
    known = ("4.4.3", "4.5.2", "4.5.3", "4.6.0", "4.6.1")
    close = cat.suggest_version(version, known)
    assert close and all(c in known for c in close)
    if first:
        assert close[0] == first, close


def test_version_order_is_numeric() -> None:
    ordered = sorted(["4.10.0", "4.9.3", "4.2.0"], key=cat.version_key)
    assert ordered == ["4.2.0", "4.9.3", "4.10.0"]
    assert cat.version_key("2026.09.0+174.pro3") > cat.version_key("2026.05.1+225.pro10")


# --- refreshing from the vendors ------------------------------------------------------


@pytest.fixture
def vendor() -> Iterator[str]:
    """A loopback HTTP server standing in for the vendors, serving the fixture files."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _catalogue_at(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "versions.json"
    shutil.copy(cat.VERSIONS_FILE, path)
    data = json.loads(path.read_text())
    files = {
        "r": "r-versions.json",
        "python": "python-versions.json",
        "quarto": "quarto-releases.json",
        "workbench": "downloads.json",
    }
    for kind, file in files.items():
        data["kinds"][kind]["source"] = f"{base}/{file}"
    path.write_text(json.dumps(data))
    return path


def test_refresh_parses_every_vendors_list(tmp_path: Path, vendor: str) -> None:
    import datetime as dt

    path = _catalogue_at(tmp_path, vendor)
    before = json.loads(path.read_text())["kinds"]
    counts = refresh.refresh_versions(path, today=dt.date(2027, 1, 5))
    after = json.loads(path.read_text())
    kinds = after["kinds"]
    assert after["retrieved"] == "2027-01-05"
    # Posit's complete lists replace the catalogue's (x.y.z only: no devel, next).
    assert kinds["r"]["versions"] == ["3.6.3", "4.4.3", "4.5.3", "4.6.0", "4.6.1", "4.6.2"]
    assert kinds["python"]["versions"] == ["3.11.13", "3.12.11", "3.13.9", "3.14.1"]
    # Quarto's releases page and Workbench's feed are partial: added to what was there.
    assert "1.10.21" in kinds["quarto"]["versions"]
    assert "1.11.3" not in kinds["quarto"]["versions"], "a pre-release is not a build to pin"
    assert set(before["quarto"]["versions"]) <= set(kinds["quarto"]["versions"])
    assert "2026.09.1+201.pro2" in kinds["workbench"]["versions"]
    assert not any("+401" in v for v in kinds["workbench"]["versions"]), "open-source server"
    assert set(before["workbench"]["versions"]) <= set(kinds["workbench"]["versions"])
    assert counts["r"] == (len(before["r"]["versions"]), 6)
    assert kinds["r"]["provenance"][0]["confirmed"].endswith("on 2027-01-05")
    # What the checks read back.
    assert "4.6.2" in cat.versions(path).kinds["r"].versions


@pytest.mark.parametrize(
    ("kind", "body", "said"),
    [
        ("r", b"<html>maintenance</html>", "did not answer JSON"),
        ("python", b'{"versions": []}', "no 'python_versions' list"),
        ("quarto", b'{"message": "API rate limit exceeded"}', "expected a list of releases"),
        ("workbench", b'{"rstudio": {}}', "no rstudio.pro section"),
    ],
)
def test_an_unexpected_answer_is_one_clear_line_and_writes_nothing(
    tmp_path: Path, kind: str, body: bytes, said: str
) -> None:
    path = _catalogue_at(tmp_path, "http://vendor.invalid")
    original = path.read_text()
    good = {k: (FIXTURES / f).read_bytes() for k, f in _FILES.items()}

    def fetch(url: str) -> bytes:
        for name, file in _FILES.items():
            if url.endswith(file):
                return body if name == kind else good[name]
        raise AssertionError(url)

    with pytest.raises(refresh.CatalogueError) as info:
        refresh.refresh_versions(path, fetch=fetch)
    assert said in str(info.value) and "\n" not in str(info.value)
    assert path.read_text() == original


_FILES = {
    "r": "r-versions.json",
    "python": "python-versions.json",
    "quarto": "quarto-releases.json",
    "workbench": "downloads.json",
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_without_the_network_the_task_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `invoke config.catalogue --versions` says on a machine that cannot reach Posit."""
    path = _catalogue_at(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    original = path.read_text()
    monkeypatch.setattr(refresh, "VERSIONS_FILE", path)
    with pytest.raises(Exit) as info:
        config_tasks.catalogue(Context(), versions=True)
    message = str(info.value.message)
    assert message.startswith("error: cannot fetch http://127.0.0.1:"), message
    assert message.endswith("catalogue unchanged") and "\n" not in message
    assert "Traceback" not in message
    assert path.read_text() == original
