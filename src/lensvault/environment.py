"""What a run ran on: Python, packages, OS, CPU, memory, GPUs and the env vars that matter.

Captured once per run and stored with it, so "why do these two runs differ?" can point at
a torch upgrade or a different GPU as readily as at a config change.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "RECORDED_ENV_VARS",
    "capture_environment",
    "capture_gpus",
    "diff_environments",
    "installed_packages",
    "parse_nvidia_smi",
]

# Variables that change numerical results or which devices a run sees. Never the whole
# environment: it holds tokens and passwords that must not land in a run record.
RECORDED_ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "CUDA_LAUNCH_BLOCKING",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDNN_DETERMINISTIC",
    "PYTORCH_CUDA_ALLOC_CONF",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
)

_NVIDIA_SMI_TIMEOUT_S = 10


def capture_environment(*, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A JSON-ready description of this process's environment.

    ``environ`` defaults to ``os.environ`` at call time; only :data:`RECORDED_ENV_VARS` are kept.
    """
    env = os.environ if environ is None else environ
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "packages": installed_packages(),
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "version": platform.version(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
        "cpu": _cpu(),
        "memory": {"total_bytes": _memory_total_bytes()},
        "gpus": capture_gpus(),
        "env": {name: env[name] for name in RECORDED_ENV_VARS if name in env},
    }


def installed_packages() -> dict[str, str]:
    """Distribution name (PEP 503-normalised) -> version, sorted by name."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue  # a broken .dist-info; reporting it would be a guess
        key = re.sub(r"[-_.]+", "-", name).lower()
        # First one wins, as it does for imports: earlier sys.path entries shadow later ones.
        found.setdefault(key, dist.version)
    return dict(sorted(found.items()))


def _cpu() -> dict[str, Any]:
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                # x86 says "model name"; some ARM kernels only give "Hardware" or "Processor".
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    model = value.strip()
                    break
    except OSError:
        pass
    count = os.cpu_count()
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = count
    return {"model": model or platform.processor() or None, "count": count, "usable": usable}


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def capture_gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs from ``nvidia-smi``; [] when it is missing, fails or hangs."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []  # e.g. the driver is not loaded: for the record, that is "no usable GPU"
    return parse_nvidia_smi(proc.stdout)


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """Parse ``name, driver_version, memory.total`` CSV rows (``"81920 MiB"``) into dicts."""
    gpus = []
    for line in text.splitlines():
        # GPU names do not contain commas; split from the right in case one ever does.
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue  # blank lines, or a warning nvidia-smi printed instead of data
        name, driver, memory = parts
        m = re.fullmatch(r"(\d+)\s*MiB", memory)
        gpus.append(
            {
                "name": name,
                "driver_version": driver,
                "memory_total_mib": int(m.group(1)) if m else None,
            }
        )
    return gpus


def diff_environments(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """What differs from environment ``a`` to ``b`` (both from :func:`capture_environment`).

    ``packages`` and ``env`` give added/removed/changed like a config diff; ``python``, ``os``,
    ``cpu``, ``memory`` give ``{field: (old, new)}`` for fields that differ; ``gpus`` gives
    ``(old, new)`` lists when they differ. ``same`` is True when nothing differs at all.
    """
    out: dict[str, Any] = {
        "python": _changed_fields(a.get("python", {}), b.get("python", {})),
        "os": _changed_fields(a.get("os", {}), b.get("os", {})),
        "cpu": _changed_fields(a.get("cpu", {}), b.get("cpu", {})),
        "memory": _changed_fields(a.get("memory", {}), b.get("memory", {})),
        "packages": _mapping_diff(a.get("packages", {}), b.get("packages", {})),
        "env": _mapping_diff(a.get("env", {}), b.get("env", {})),
        "gpus": None if a.get("gpus", []) == b.get("gpus", []) else (a.get("gpus", []), b.get("gpus", [])),
    }
    out["same"] = not any(
        [out["python"], out["os"], out["cpu"], out["memory"], out["gpus"]]
        + [any(section.values()) for section in (out["packages"], out["env"])]
    )
    return out


def _changed_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple]:
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _mapping_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict]:
    return {
        "added": {k: b[k] for k in sorted(b.keys() - a.keys())},
        "removed": {k: a[k] for k in sorted(a.keys() - b.keys())},
        "changed": {k: (a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
    }
