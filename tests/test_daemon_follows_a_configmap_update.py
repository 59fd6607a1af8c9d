"""Kubernetes updates a mounted ConfigMap by writing the new files into a fresh hidden
directory and renaming a `..data` symlink over the old one: the daemon (deploy/kubernetes)
must see that swap as a change and reconcile the new job files."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import StartDaemon
from tests.daemon_helpers import wait_for

JOB = "jobs:\n  {id}:\n    schedule: {{interval: 1h}}\n    run: {{type: command, command: [x]}}\n"


def publish(jobs_dir: Path, version: str, files: dict[str, str]) -> None:
    """What kubelet does for one ConfigMap version (atomic_writer.go)."""
    directory = jobs_dir / f"..{version}"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    (jobs_dir / "..data_tmp").symlink_to(directory.name)
    os.rename(jobs_dir / "..data_tmp", jobs_dir / "..data")
    for name in files:
        if not (jobs_dir / name).is_symlink():
            (jobs_dir / name).symlink_to(f"..data/{name}")


def test_a_configmap_swap_is_reconciled(start_daemon: StartDaemon, jobs_dir: Path) -> None:
    publish(jobs_dir, "2026_11_29_01", {"a.yaml": JOB.format(id="first")})
    daemon = start_daemon()
    assert set(daemon.jobs()) == {"first"}
    publish(jobs_dir, "2026_11_29_02", {"a.yaml": JOB.format(id="second")})
    wait_for(lambda: set(daemon.jobs()) == {"second"}, "the swapped ConfigMap's job")
    assert daemon.stop() == 0
