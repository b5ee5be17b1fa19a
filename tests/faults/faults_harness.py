"""A small harness for fault-injection trials: run a real ``lensvault`` command, SIGKILL it at a
seeded random moment, then check what must hold whatever the moment was.

A trial kind is a ``Scenario``: how to prepare a vault, the command to kill, what must hold
after the kill (``check``) and the command that must then succeed (``retry``). ``run_trials``
runs N of them with seeds ``base_seed + i`` and returns a ``Tally`` (trials, faults injected,
losses); every trial that breaks an invariant is a loss, named by its seed. The seed decides
everything random about a trial (the scenario's variant, the kill moment as a share of the
command's duration, what is killed), so one seed replays one trial. To add a kind, write a
Scenario and call ``run_trials``; ``invariants.py`` holds the checks every kind shares.

The kill moment is drawn uniformly over the command's own duration (the shorter of two
uninterrupted runs), to its very end, where commits happen. Half of the seeds kill the
whole process group (as a machine losing power stops everything), the other half only the
command's main process (as ``kill -9 PID`` does): its worker processes must then die with
it; the checks wait for them first.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LV = [sys.executable, "-m", "lensvault.cli.main"]


def env(extra: dict | None = None) -> dict:
    e = {k: v for k, v in os.environ.items() if k != "LENSVAULT_DIR"}
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["COLUMNS"] = "200"
    e.update(extra or {})
    return e


def lv(*args, timeout: float = 120, extra_env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*LV, *map(str, args)], env=env(extra_env), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@dataclass
class Outcome:
    seed: int
    delay: float
    killed: bool  # False: the command finished before the kill
    returncode: int
    group: bool  # the whole process group was killed, not only the main process
    stderr: str = ""


def run_killed(argv: list, *, delay: float, group: bool, seed: int, extra_env: dict | None = None,
               cwd=None) -> Outcome:
    proc = subprocess.Popen([*LV, *map(str, argv)], env=env(extra_env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=cwd)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        try:
            (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            killed = False
    _, err = proc.communicate(timeout=120)
    _wait_for_group(proc.pid)
    return Outcome(seed, delay, killed, proc.returncode, group, err or "")


def _wait_for_group(pgid: int, timeout: float = 30) -> None:
    """Until no process of the command's group is left (orphaned workers finish their part)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    os.killpg(pgid, signal.SIGKILL)


def _remove(folder: Path) -> None:
    def writable(func, path, _exc):
        os.chmod(os.path.dirname(path), 0o755)
        func(path)

    shutil.rmtree(folder, onerror=writable)


@dataclass
class Tally:
    name: str
    trials: int = 0
    faults: int = 0  # trials where the kill landed before the command ended
    losses: list[str] = field(default_factory=list)
    command_s: float = 0.0  # the uninterrupted command's duration (the kill moments are drawn over it)
    elapsed_s: float = 0.0  # the trials, calibration included

    def line(self) -> str:
        return (f"faults: {self.name}: {self.trials} trials, {self.faults} faults injected, {len(self.losses)} losses "
                f"(command {self.command_s:.2f} s, {self.elapsed_s:.0f} s in all)")


class Scenario:
    """One kind of trial. ``prepare`` returns a state dict passed to the other methods."""

    name = "scenario"

    def prepare(self, root: Path, seed: int) -> dict:
        raise NotImplementedError

    def command(self, state: dict) -> list:
        raise NotImplementedError

    def check(self, state: dict, outcome: Outcome) -> None:
        """Raise AssertionError if an invariant does not hold after the kill."""

    def retry(self, state: dict, outcome: Outcome) -> None:
        """Run what must succeed after the kill (and the cleanup), and check it did."""


def run_trials(scenario: Scenario, root: Path, *, trials: int, base_seed: int, budget_s: float) -> Tally:
    """``trials`` seeded trials of ``scenario`` (fewer if ``budget_s`` runs out: the tally says how many)."""
    tally = Tally(scenario.name)
    durations = []
    began = time.monotonic()
    for k in range(2):  # the shorter of two runs: the first may pay for cold caches
        calib = scenario.prepare(root / f"calibrate-{k}", base_seed + k)
        t = time.monotonic()
        done = lv(*scenario.command(calib), timeout=300, extra_env=calib.get("env"), cwd=calib.get("cwd"))
        durations.append(time.monotonic() - t)
        assert done.returncode == 0, f"{scenario.name}: the uninterrupted command failed: {done.stderr}"
    duration = tally.command_s = min(durations)
    started = time.monotonic()
    for i in range(trials):
        if time.monotonic() - started > budget_s:
            break
        seed = base_seed + i
        rng = random.Random(seed)
        state = scenario.prepare(root / f"trial-{i}", seed)
        outcome = run_killed(scenario.command(state), delay=rng.uniform(0.05, 1.0) * duration,
                             group=(seed // 2 % 2 == 0), seed=seed, extra_env=state.get("env"),
                             cwd=state.get("cwd"))
        tally.trials += 1
        tally.faults += outcome.killed
        try:
            assert "Traceback" not in outcome.stderr, outcome.stderr
            scenario.check(state, outcome)
            scenario.retry(state, outcome)
        except AssertionError as e:
            text = str(e)
            text = text if len(text) < 600 else text[:600] + " …"
            tally.losses.append(f"seed {seed} (kill at {outcome.delay:.3f} s, group={outcome.group}): {text}")
        else:  # a trial that held is not kept (thousands of files each); a loss's folder is, to look at
            _remove(root / f"trial-{i}")
    tally.elapsed_s = time.monotonic() - began
    print(tally.line())
    return tally
