"""The architecture diagram: drawn for the example and for a three-queue CPU-only
deployment; the labels read back from the SVG match the configuration."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pwbcluster.config import load_config
from pwbcluster.estimate import diagram
from pwbcluster.pipeline import plan_estimate as steps
from pwbcluster.pipeline.plan import PlanContext

from .conftest import ROOT, rendered

SVG = "{http://www.w3.org/2000/svg}"
needs_graphviz = pytest.mark.skipif(
    diagram.unavailable_reason() is not None,
    reason=f"diagram dependency missing: {diagram.unavailable_reason()}",
)

THREE_QUEUES = """\
# yaml-language-server: $schema=schema/deployment.schema.json
deployment:
  name: three
  region: us-east-2
  owner_email: owner@example.com
cluster:
  queues:
    - {name: small, instance_type: t3.large, min_count: 0, max_count: 4}
    - {name: big, instance_type: c6i.8xlarge, min_count: 2, max_count: 20}
    - {name: mem, instance_type: r6i.4xlarge, min_count: 0, max_count: 3}
  login_nodes: {count: 3, instance_type: m6i.xlarge, allowed_cidr: 10.0.0.0/8}
  workbench:
    port: 8788
    tls_certificate_arn: arn:aws:acm:us-east-2:123456789012:certificate/abc-123
    hostname: workbench.example.com
  ha: {controllers: false}
  storage:
    home: {type: FsxLustre, capacity_gb: 2400, deployment_type: PERSISTENT_2}
"""


def svg_graph(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(node id -> label, edge 'a->b' -> label), labels as their text lines joined."""
    root = ET.parse(path).getroot()
    nodes: dict[str, str] = {}
    edges: dict[str, str] = {}
    for group in root.iter(f"{SVG}g"):
        kind = group.get("class")
        if kind not in ("node", "edge"):
            continue
        title = group.findtext(f"{SVG}title") or ""
        text = "\n".join((t.text or "").strip() for t in group.iter(f"{SVG}text"))
        target = nodes if kind == "node" else edges
        target[title.replace("&#45;", "-")] = text
    return nodes, edges


def draw(ctx: PlanContext) -> tuple[dict[str, str], dict[str, str], Path]:
    steps.diagram_step(ctx)
    svg, png = ctx.build_dir / "architecture.svg", ctx.build_dir / "architecture.png"
    assert svg in ctx.files and png in ctx.files, ctx.notes
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nodes, edges = svg_graph(svg)
    return nodes, edges, svg


def queue_labels(nodes: dict[str, str]) -> list[str]:
    return [label for label in nodes.values() if label.startswith("queue ")]


@needs_graphviz
def test_the_example_diagram_shows_queues_counts_ports_and_ha(example: PlanContext) -> None:
    nodes, edges, svg = draw(example)
    cluster = example.config.data["cluster"]
    labels = queue_labels(nodes)
    assert len(labels) == len(cluster["queues"])
    for q in cluster["queues"]:
        label = next(lb for lb in labels if lb.split("\n")[0].split()[1] == q["name"])
        assert q["instance_type"] in label
        assert f"{q['min_count']}..{q['max_count']} nodes" in label
        assert ("(GPU)" in label) == bool(q.get("gpu"))
    login = cluster["login_nodes"]
    assert f"login nodes x{login['count']}\n{login['instance_type']}" in nodes["login_pool"]
    port = cluster["workbench"]["port"]
    assert ":22 ssh" in nodes["login_nlb"] and f":443 HTTPS -> {port}" in nodes["login_nlb"]
    assert "1200 GB" in "\n".join(nodes.values())
    assert "PostgreSQL 16" in nodes["db_workbench"]
    assert "LDAPS front" in nodes["ldaps_front"] and "SimpleAD" in nodes["directory"]
    assert "db_audit" not in nodes and "db_slurm" not in nodes
    # Controller HA: the login nodes run backup controllers sharing StateSaveLocation.
    assert "backup SlurmctldHost" in edges["login_pool->head"]
    assert "StateSaveLocation" in edges["login_pool->efs_internal"]
    assert "StateSaveLocation" in nodes["efs_internal"]
    # Icons travel inside the SVG: no path into this machine's site-packages.
    text = svg.read_text()
    assert "data:image/png;base64," in text
    assert not re.search(r'href="/', text), "an icon still points at a local file"


@needs_graphviz
def test_the_readme_diagram_is_the_example_as_configured_now(example: PlanContext) -> None:
    nodes, edges, _ = draw(example)
    docs_nodes, docs_edges = svg_graph(ROOT / "docs" / "architecture.svg")
    hint = (
        "docs/architecture.svg is out of date: run `invoke plan --config config/example.yaml` "
        "and copy build/example/plan/architecture.{png,svg} to docs/"
    )
    assert docs_nodes == nodes, hint
    assert docs_edges == edges, hint


@needs_graphviz
def test_three_cpu_queues_tls_and_no_ha(full_project: Path) -> None:
    path = full_project / "config" / "three.yaml"
    path.write_text(THREE_QUEUES)
    ctx = rendered(load_config(path))
    nodes, edges, _ = draw(ctx)
    labels = queue_labels(nodes)
    assert sorted(lb.split("\n")[0] for lb in labels) == ["queue big", "queue mem", "queue small"]
    assert not any("(GPU)" in lb for lb in labels)
    expected = {"small": "t3.large\n0..4", "big": "c6i.8xlarge\n2..20", "mem": "r6i.4xlarge\n0..3"}
    for name, body in expected.items():
        assert any(lb.startswith(f"queue {name}\n{body} nodes") for lb in labels), labels
    assert "login nodes x3\nm6i.xlarge" in nodes["login_pool"]
    assert ":443 HTTPS -> 8788" in nodes["login_nlb"] and ":22 ssh" in nodes["login_nlb"]
    assert "allowed 10.0.0.0/8" in nodes["users"]
    assert "/home\nFSx for Lustre PERSISTENT_2\n2400 GB" in nodes.values()
    assert "login_pool->head" not in edges, "no backup controllers when ha.controllers is off"
    assert "backup slurmctld" not in nodes["login_pool"]
    assert "StateSaveLocation" not in nodes["efs_internal"] and "head->efs_internal" in edges
    title = " ".join(
        t.text or "" for t in ET.parse(ctx.build_dir / "architecture.svg").iter(f"{SVG}text")
    )
    assert "pwbcluster 'three' in us-east-2" in title


def test_without_graphviz_the_step_is_skipped_in_one_line(
    example: PlanContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    steps.diagram_step(example)
    assert [n for n in example.notes if n.startswith("Diagram")] == [
        "Diagram skipped: Graphviz `dot` is not on PATH (apt-get install graphviz; "
        "bin/setup does it)."
    ]
    assert not (example.build_dir / "architecture.png").exists()


def test_without_the_diagrams_package_the_step_is_skipped_in_one_line(
    example: PlanContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = diagram.importlib.util.find_spec
    monkeypatch.setattr(
        diagram.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "diagrams" else real(name, *a),
    )
    steps.diagram_step(example)
    assert [n for n in example.notes if n.startswith("Diagram")] == [
        "Diagram skipped: the Python package `diagrams` is not installed (pip install diagrams)."
    ]


def test_a_graphviz_failure_is_one_line_not_a_traceback(
    example: PlanContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphviz import CalledProcessError

    def crash(*args: object, **kwargs: object) -> None:
        raise CalledProcessError(-6, ["dot", "-Tpng"], stderr=b"maze.c:313: chkSgraph")

    monkeypatch.setattr(diagram, "draw", crash)
    steps.diagram_step(example)
    diagram_notes = [n for n in example.notes if n.startswith("Diagram")]
    assert len(diagram_notes) == 1
    assert diagram_notes[0].startswith("Diagram skipped: Graphviz failed: Command")


def test_without_the_render_step_both_steps_say_so(full_project: Path) -> None:
    from pwbcluster.pipeline.plan import planned_context

    ctx = planned_context(load_config(full_project / "config" / "example.yaml"))
    steps.diagram_step(ctx)
    steps.cost_step(ctx)
    assert len(ctx.notes) == 2 and all("render step did not run" in n for n in ctx.notes)


def test_lb_ports_label_follows_the_listeners() -> None:
    default = load_config(ROOT / "config" / "example.yaml").model.cluster.workbench
    assert default.port == 8787 and default.tls_certificate_arn is None and default.tls
    # HTTPS by default (a generated certificate), plain HTTP only where opted out.
    assert diagram.lb_ports_label(default) == ":22 ssh\n:443 HTTPS -> 8787"
    plain = dataclasses.replace(default, tls=False)
    assert diagram.lb_ports_label(plain) == ":22 ssh\n:8787 Workbench"
    own = dataclasses.replace(default, tls_certificate_arn="arn:aws:acm:x")
    assert diagram.lb_ports_label(own) == ":22 ssh\n:443 HTTPS -> 8787"
    assert diagram.lb_ports_label(default, ssh=False) == ":443 HTTPS -> 8787"
