"""deploy/: the Kubernetes manifests validate offline against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors), both layouts hold what operators
rely on (1 replica + PVC for SQLite, 2 for PostgreSQL, probes on /healthz, a named port),
the ConfigMap's job files are valid job files, and the systemd unit passes
`systemd-analyze verify` with its sandboxing in place."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).parent.parent / "deploy"
K8S_VERSION = "1.30.0"


def documents(name: str) -> list[dict[str, Any]]:
    text = (DEPLOY / "kubernetes" / name).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def layout(name: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in documents("common.yaml") + documents(name)}


@pytest.mark.parametrize("name", ["common.yaml", "sqlite.yaml", "postgresql.yaml"])
def test_every_manifest_validates_against_the_kubernetes_schemas(name: str) -> None:
    for doc in documents(name):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_catches_a_broken_deployment() -> None:
    broken = copy.deepcopy(layout("sqlite.yaml")["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


@pytest.mark.parametrize(("name", "replicas"), [("sqlite.yaml", 1), ("postgresql.yaml", 2)])
def test_both_layouts_probe_healthz_on_the_named_port(name: str, replicas: int) -> None:
    kinds = layout(name)
    deployment, service = kinds["Deployment"], kinds["Service"]
    assert deployment["spec"]["replicas"] == replicas
    main = container(deployment)
    assert [p["name"] for p in main["ports"]] == ["http"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(main["resources"]["requests"]) == {"cpu", "memory"}
    env = {e["name"]: e for e in main["env"]}
    secret = kinds["Secret"]["metadata"]["name"]
    assert env["SCHEDULER_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": secret,
        "key": "token",
    }
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["jobs"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]


def test_sqlite_keeps_one_writer_on_a_claim_and_postgresql_takes_its_url_from_the_secret() -> None:
    sqlite = layout("sqlite.yaml")
    assert sqlite["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in sqlite["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    claim = sqlite["PersistentVolumeClaim"]["metadata"]["name"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim
    pg = layout("postgresql.yaml")
    env = {e["name"]: e for e in container(pg["Deployment"])["env"]}
    assert env["SCHEDULER_DB"]["valueFrom"]["secretKeyRef"]["key"] == "db-url"
    assert "db-url" in pg["Secret"]["stringData"]


def test_the_configmap_holds_valid_job_files_as_kubelet_mounts_them(tmp_path: Path) -> None:
    # kubelet's layout: the files in a timestamped hidden dir, `..data` pointing at it, and
    # each key a symlink through `..data` (swapped atomically on a ConfigMap update)
    jobs = tmp_path / "jobs.d"
    version = jobs / "..2026_11_29_01_00_00.000000001"
    version.mkdir(parents=True)
    (jobs / "..data").symlink_to(version.name)
    data = layout("sqlite.yaml")["ConfigMap"]["data"]
    for name, text in data.items():
        (version / name).write_text(text)
        (jobs / name).symlink_to(f"..data/{name}")
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", "--jobs-dir", str(jobs), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"in {len(data)} file(s)" in result.stdout  # each file once, not again via ..data


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
UNIT = DEPLOY / "systemd" / "scheduler.service"


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


def installed_unit(tmp_path: Path, text: str) -> Path:
    # verify checks that ExecStart exists: point it at this checkout's installed command.
    scheduler = shutil.which("scheduler", path=str(Path(sys.executable).parent))
    assert scheduler, "the scheduler command is not installed next to this Python"
    path = tmp_path / "scheduler.service"
    path.write_text(text.replace("/opt/scheduler/bin/scheduler", scheduler))
    return path


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed here")
def test_the_systemd_unit_verifies_and_is_sandboxed(tmp_path: Path) -> None:
    text = UNIT.read_text()
    unit = installed_unit(tmp_path, text)
    result = verify(unit)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # systemd's own score of the sandbox: 10 is unprotected, under 2 is "OK"
    security = subprocess.run(
        [str(SYSTEMD_ANALYZE), "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert exposure and float(exposure.group(1)) < 2.0, security.stdout[-2000:]
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["DynamicUser"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["NoNewPrivileges"] == "yes"
    assert "/var/lib/scheduler" in settings["ReadWritePaths"].split()
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["Restart"] == "on-failure"


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed here")
def test_verify_would_catch_a_misspelled_directive(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("NoNewPrivileges=", "NoNewPrivilege=")
    result = verify(installed_unit(tmp_path, text))
    assert "Unknown key 'NoNewPrivilege'" in result.stdout + result.stderr
