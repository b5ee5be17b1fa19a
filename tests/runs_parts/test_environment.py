from __future__ import annotations

import json
import os
import platform
import stat
import sys
from importlib import metadata

from lensvault.environment import (
    capture_environment,
    capture_gpus,
    diff_environments,
    installed_packages,
    parse_nvidia_smi,
)

NVIDIA_SMI_OUTPUT = "NVIDIA A100-SXM4-80GB, 535.104.05, 81920 MiB\nNVIDIA GeForce RTX 4090, 545.23.08, 24564 MiB\n"


def test_capture_shape_and_values():
    env = capture_environment(environ={})
    assert set(env) == {"python", "packages", "os", "cpu", "memory", "gpus", "env"}
    assert env["python"] == {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }
    assert env["os"]["system"] == platform.system()
    assert env["cpu"]["count"] == os.cpu_count()
    assert 1 <= env["cpu"]["usable"] <= env["cpu"]["count"]
    assert env["memory"]["total_bytes"] > 100 * 2**20
    assert isinstance(env["gpus"], list)
    assert env["env"] == {}
    assert json.loads(json.dumps(env)) == env  # storable as a run record as is


def test_packages_are_normalised_sorted_and_real():
    packages = installed_packages()
    assert list(packages) == sorted(packages)
    assert packages["pytest"] == metadata.version("pytest")
    assert packages["pyyaml"] == metadata.version("PyYAML")  # "PyYAML" normalised
    assert packages["lensvault"] == metadata.version("lensvault")
    assert all(name == name.lower() and "_" not in name for name in packages)


def test_only_recorded_env_vars_are_kept():
    env = capture_environment(
        environ={"CUDA_VISIBLE_DEVICES": "0,1", "PYTHONHASHSEED": "0", "AWS_SECRET_ACCESS_KEY": "x", "HOME": "/h"}
    )
    assert env["env"] == {"CUDA_VISIBLE_DEVICES": "0,1", "PYTHONHASHSEED": "0"}


def test_env_defaults_to_process_environment_at_call_time(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert capture_environment()["env"]["CUDA_VISIBLE_DEVICES"] == "3"


def test_parse_nvidia_smi():
    assert parse_nvidia_smi(NVIDIA_SMI_OUTPUT + "\n") == [
        {"name": "NVIDIA A100-SXM4-80GB", "driver_version": "535.104.05", "memory_total_mib": 81920},
        {"name": "NVIDIA GeForce RTX 4090", "driver_version": "545.23.08", "memory_total_mib": 24564},
    ]
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("No devices were found\n") == []
    assert parse_nvidia_smi("X, 1.0, [N/A]\n") == [{"name": "X", "driver_version": "1.0", "memory_total_mib": None}]


def _fake_nvidia_smi(directory, body: str):
    exe = directory / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_gpus_absent_failing_and_present(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert capture_gpus() == []  # no nvidia-smi at all
    _fake_nvidia_smi(tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the driver' >&2\nexit 9\n")
    assert capture_gpus() == []
    _fake_nvidia_smi(tmp_path, f"printf '{NVIDIA_SMI_OUTPUT}'\n")
    assert [g["name"] for g in capture_gpus()] == ["NVIDIA A100-SXM4-80GB", "NVIDIA GeForce RTX 4090"]


def test_diff_identical_environment():
    env = capture_environment(environ={})
    diff = diff_environments(env, json.loads(json.dumps(env)))
    assert diff["same"] is True
    assert diff["packages"] == {"added": {}, "removed": {}, "changed": {}}
    assert diff["python"] == {} and diff["gpus"] is None


def test_diff_environments_reports_each_kind_of_change():
    a = capture_environment(environ={"CUDA_VISIBLE_DEVICES": "0"})
    b = json.loads(json.dumps(a))
    b["python"]["version"] = "3.12.1"
    b["os"]["release"] = "6.1.0"
    b["packages"]["torch"] = "2.3.0"
    a["packages"]["torch"] = "2.2.1"
    b["packages"]["brand-new"] = "1.0"
    del b["packages"]["pytest"]
    b["env"] = {"CUDA_VISIBLE_DEVICES": "1", "OMP_NUM_THREADS": "4"}
    b["gpus"] = parse_nvidia_smi(NVIDIA_SMI_OUTPUT)
    diff = diff_environments(a, b)
    assert diff["same"] is False
    assert diff["python"] == {"version": (platform.python_version(), "3.12.1")}
    assert diff["os"] == {"release": (platform.release(), "6.1.0")}
    assert diff["packages"]["changed"] == {"torch": ("2.2.1", "2.3.0")}
    assert diff["packages"]["added"] == {"brand-new": "1.0"}
    assert diff["packages"]["removed"] == {"pytest": a["packages"]["pytest"]}
    assert diff["env"] == {"added": {"OMP_NUM_THREADS": "4"}, "removed": {}, "changed": {"CUDA_VISIBLE_DEVICES": ("0", "1")}}
    assert diff["gpus"] == (a["gpus"], b["gpus"])


def test_diff_tolerates_older_records_missing_sections():
    diff = diff_environments({"python": {"version": "3.11.7"}}, {"python": {"version": "3.11.7"}, "packages": {"x": "1"}})
    assert diff["packages"]["added"] == {"x": "1"}
    assert diff["same"] is False
