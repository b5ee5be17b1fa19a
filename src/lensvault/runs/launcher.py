"""``lensvault run``: preflight, data folder, the child process, its log, and the record.

The child runs in its own process group with stdout and stderr merged into one pipe (one
stream keeps the order of lines the user saw). We copy every chunk to our stdout and to a
log file as it arrives, so a chatty child never blocks on a full pipe and nothing is held
back until the end. Ctrl-C (or SIGTERM to us) is forwarded to the child's group as SIGINT;
if the child has not ended after ``grace_seconds`` it gets SIGTERM, then SIGKILL.

The training dies with us. Killed with SIGKILL (or by a machine's OOM killer), we finish
nothing: the run is ended as crashed by the next command, and whatever the training went on
computing would be recorded nowhere while it held the GPU. So the child asks the kernel for
SIGKILL when we die (``PR_SET_PDEATHSIG``, Linux), and a small watchdog process in a session
of its own kills the child's whole process group (a shell script's children, a launcher's
workers) when the pipe it reads from us closes without our all-clear.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import LensVaultError, UsageError
from lensvault.runs.runfiles import run_work_dir, store_log

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["RunResult", "execute", "run_command", "run_work_dir", "store_log"]

EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    exit_code: int | None
    output_dir: str
    clean: bool

    @property
    def cli_exit_code(self) -> int:
        if self.status == "succeeded":
            return 0
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        return self.exit_code if self.exit_code and 0 < self.exit_code < 256 else 1

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, "exit_code": self.exit_code,
                "output_dir": self.output_dir, "clean": self.clean}


def run_command(vault: Vault, command: list[str], *, dataset: str, config: str, model: str | None = None,
                version: str | None = None, seed: int | None = None, allow_dirty: bool = False,
                output_dir=None, link: str = "auto", cwd=None, stream=None, grace_seconds: float = 10.0) -> RunResult:
    from lensvault.runs.preflight import preflight

    if not command:
        raise UsageError("no command to run", fix="put it after `--`: lensvault run ... -- python train.py")
    out = Path(output_dir).absolute() if output_dir else None
    report = preflight(vault, dataset=dataset, config=config, model=model, version=version, seed=seed,
                       allow_dirty=allow_dirty, output_dir=out)
    report.raise_for_failures()
    return execute(vault, report, command, output_dir=out, link=link, cwd=cwd, stream=stream,
                   grace_seconds=grace_seconds)


def execute(vault: Vault, report, command: list[str], *, kind: str = "run", reproduces: str | None = None,
            output_dir=None, link: str = "auto", cwd=None, stream=None, grace_seconds: float = 10.0,
            code_root: Path | None = None) -> RunResult:
    """Run ``command`` as a recorded run whose pins (commit, data, config, seeds) are ``report``'s.

    ``code_root`` is where the pinned code is checked out when it is not the vault's own
    work tree (``reproduce`` runs in a temporary git worktree).
    """
    from lensvault.runs import lifecycle, recorder

    out = Path(output_dir).absolute() if output_dir else None
    cwd = Path(cwd or os.getcwd()).absolute()
    run_id = lifecycle.create_run(vault, report, kind=kind, command=list(command), cwd=str(cwd), reproduces=reproduces)
    out = out or vault.root / "runs" / run_id
    work = run_work_dir(vault, run_id)
    log_path = work / "log.txt"
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    stream = stream if stream is not None else sys.stdout.buffer
    status, exit_code = "failed", None
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below, after the child and its pump
    try:
        try:
            env = _child_env(vault, report, run_id, out, work, link, code_root)
            _environment(vault, run_id)
        except LensVaultError as e:
            msg = f"lensvault: could not prepare the run: {e}\n".encode()
            log.write(msg)
            stream.write(msg)
            raise
        status, exit_code = _supervise(command, env, cwd, log, stream, grace_seconds)
    finally:
        log.close()
        try:
            # Also for a failed or interrupted run: what it wrote is evidence of how far it got.
            # Not for a run someone abandoned meanwhile: its record ended there.
            if lifecycle.run_status(vault, run_id) in lifecycle.OPEN_STATES:
                recorder.record_output_dir(vault, run_id, out)
                if (out / "metrics.json").is_file():
                    recorder.record_metrics_file(vault, run_id, out / "metrics.json")
        finally:
            log_oid = store_log(vault, log_path)
            # "abandoned" when someone ended the run by hand while it ran (runs abandon --force).
            status = lifecycle.finish_run(vault, run_id, status, exit_code=exit_code, log_oid=log_oid)
            shutil.rmtree(work, ignore_errors=True)
    return RunResult(run_id, status, exit_code, str(out), report.clean)


def _child_env(vault: Vault, report, run_id: str, out: Path, work: Path, link: str, code_root: Path | None = None) -> dict:
    from lensvault.runs.datadir import materialize

    data_dir = materialize(vault.dataset(report.dataset), work / "data", link=link)
    env = dict(os.environ)
    env.update({
        "LENSVAULT_RUN_ID": run_id,
        "LENSVAULT_DIR": str(vault.root),
        "LENSVAULT_DATA_DIR": str(data_dir),
        "LENSVAULT_DATASET": report.dataset,
        "LENSVAULT_CONFIG": str(Path(code_root or report.repo_root) / _config_path(vault, report.config_id)),
        "LENSVAULT_CONFIG_ID": report.config_id,
        "LENSVAULT_OUTPUT_DIR": str(out),
        # What the command records (log_metrics, start_run) is recorded as done by whoever ran it.
        "LENSVAULT_USER": vault.actor,
        # Children that print through Python flush each line, so the log and the terminal keep up.
        "PYTHONUNBUFFERED": "1",
    })
    if report.seeds.get("train") is not None:
        env["LENSVAULT_SEED"] = str(report.seeds["train"])
    if report.seeds.get("split") is not None:
        env["LENSVAULT_SPLIT_SEED"] = str(report.seeds["split"])
    if report.model:
        env["LENSVAULT_MODEL"] = f"{report.model[0]}@{report.model[1]}"
    return env


def _config_path(vault: Vault, config_id: str) -> str:
    from lensvault.configs.registered import get_config

    with vault.catalog.read() as conn:
        return get_config(conn, config_id).repo_path


def _environment(vault: Vault, run_id: str) -> None:
    from lensvault.environment import capture_environment
    from lensvault.runs.lifecycle import set_environment

    set_environment(vault, run_id, capture_environment())


def _supervise(command, env, cwd: Path, log, stream, grace_seconds: float) -> tuple[str, int | None]:
    from lensvault.parallel import dies_with_this_process

    try:
        # (The thread that starts the child is its "parent" for PR_SET_PDEATHSIG: it is this
        # one, which supervises the child until it ends.)
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd, start_new_session=True, preexec_fn=dies_with_this_process())
    except OSError as e:
        msg = f"lensvault: could not start {command[0]!r}: {e.strerror or e}\n".encode()
        log.write(msg)
        stream.write(msg)
        stream.flush()
        return "failed", 127
    watchdog = _Watchdog(child.pid)
    try:
        return _follow(child, log, stream, grace_seconds)
    finally:
        watchdog.stand_down()


def _follow(child, log, stream, grace_seconds: float) -> tuple[str, int | None]:
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    interrupted = False
    fd = child.stdout.fileno()
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    _signal_group(child, signal.SIGINT)
                    _escalate_later(child, grace_seconds)
                continue
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            try:
                stream.write(chunk)
                stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # the terminal went away; the log still gets everything
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                interrupted = True
                _signal_group(child, signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
        child.stdout.close()
    if interrupted:
        return "interrupted", code
    return ("succeeded" if code == 0 else "failed"), code


# Reads stdin until it closes; no all-clear byte before that means the supervisor died.
_WATCHDOG = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
got = b""
while True:
    try:
        chunk = os.read(0, 64)
    except InterruptedError:
        continue
    except OSError:
        break
    if not chunk:
        break
    got += chunk
if not got:
    try:
        os.killpg(int(sys.argv[1]), signal.SIGKILL)
    except OSError:
        pass
"""


class _Watchdog:
    """Kills the child's process group if this process dies before ``stand_down``.

    A separate interpreter in its own session (a kill of our process group or session, or a
    closed terminal, does not reach it), reading a pipe only we hold the write end of: the
    kernel closes it when we die, however we die. Without one (it could not start), the child
    itself still dies with us (PR_SET_PDEATHSIG); its own children may not.
    """

    def __init__(self, pgid: int):
        self.proc = self.fd = None
        try:
            r, self.fd = os.pipe()  # not inherited by anything we exec later
            try:
                self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG, str(pgid)], stdin=r,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True)
            finally:
                os.close(r)
        except OSError:
            self.stand_down()

    def stand_down(self) -> None:
        """The child has ended under our watch: the watchdog leaves its group alone and exits."""
        if self.fd is not None:
            try:
                os.write(self.fd, b"done")
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _signal_group(child, sig) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _escalate_later(child, grace_seconds: float) -> None:
    """SIGTERM, then SIGKILL, if the child ignores the SIGINT we forwarded."""
    import threading

    def escalate():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + grace_seconds
            while time.monotonic() < deadline:
                if child.poll() is not None:
                    return
                time.sleep(0.05)
            _signal_group(child, sig)

    threading.Thread(target=escalate, daemon=True).start()
