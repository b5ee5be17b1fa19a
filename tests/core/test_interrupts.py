"""Ctrl-C is never raised inside Python's import system (lensvault.interrupts): there it is
deferred and sent again once the import is done; everywhere else it interrupts at once."""

from __future__ import annotations

import signal
import sys

import pytest

from lensvault import interrupts

IMPORT_FILE = "<frozen importlib._bootstrap>"


def _call_from(filename: str):
    """Call the handler from a frame whose code claims to be ``filename``."""
    code = compile("handler(signal.SIGINT, sys._getframe())", filename, "eval")
    return eval(code, {"handler": interrupts._on_interrupt, "signal": signal, "sys": sys})


@pytest.fixture
def no_timer():
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)


def test_outside_the_import_system_ctrl_c_interrupts_at_once(no_timer):
    with pytest.raises(KeyboardInterrupt):
        _call_from("/some/module.py")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("filename", [IMPORT_FILE, "<frozen importlib._bootstrap_external>"])
def test_inside_the_import_system_it_is_deferred_and_sent_again(filename, no_timer):
    previous = signal.signal(signal.SIGALRM, signal.SIG_IGN)  # keep the retry from firing here
    try:
        assert _call_from(filename) is None  # no KeyboardInterrupt
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= interrupts._RETRY_S
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_a_frame_called_from_an_import_counts_as_inside_it(no_timer):
    """Module code runs below importlib's frames: a Ctrl-C there waits for the import to end."""
    inner = compile("handler(signal.SIGINT, sys._getframe())", "/site-packages/heavy/__init__.py", "eval")
    outer = compile("run()", IMPORT_FILE, "eval")
    env = {"handler": interrupts._on_interrupt, "signal": signal, "sys": sys}
    previous = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    try:
        assert eval(outer, {"run": lambda: eval(inner, env)}) is None
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_the_retry_sends_sigint_again_so_a_held_sigint_stays_held():
    received = []
    previous = signal.signal(signal.SIGINT, lambda *a: received.append(a[0]))
    try:
        interrupts._again(signal.SIGALRM, None)
        assert received == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_install_leaves_a_handler_someone_else_chose_alone():
    mine = lambda *a: None  # noqa: E731
    previous = signal.signal(signal.SIGINT, mine)
    try:
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_inside_a_held_section_is_raised_when_it_ends():
    """Whichever thread the kernel gave SIGINT to, the handler (main thread) waits for the section."""
    previous = signal.signal(signal.SIGINT, interrupts._on_interrupt)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt), interrupts.held():
            with interrupts.held():
                signal.raise_signal(signal.SIGINT)
                done.append("inner")
            done.append("outer")  # the inner section's end is not the outermost one
        assert done == ["inner", "outer"]
        assert interrupts._held == 0 and not interrupts._pending
        with interrupts.held():  # nothing pending: leaving raises nothing
            pass
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_another_thread_receives_during_a_fork_is_not_lost(tmp_path):
    """parallel.sigint_held around a fork: a SIGINT delivered while held is raised after it."""
    import os
    import threading

    from lensvault.parallel import sigint_held

    previous = signal.signal(signal.SIGINT, interrupts._on_interrupt)
    try:
        ready = threading.Event()
        stop = threading.Event()
        helper = threading.Thread(target=lambda: (ready.set(), stop.wait(5)))
        helper.start()  # a thread with SIGINT unblocked, as the pyarrow prefetch has
        ready.wait()
        after = []
        with pytest.raises(KeyboardInterrupt), sigint_held():
            os.kill(os.getpid(), signal.SIGINT)  # the main thread blocks it: the helper thread gets it
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            after.append("forked")
        assert after == ["forked"]
    finally:
        stop.set()
        helper.join()
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def handler_installed(monkeypatch):
    monkeypatch.setattr(interrupts, "_kept", [])
    monkeypatch.setattr(interrupts, "_several", False)
    previous = signal.signal(signal.SIGINT, interrupts._on_interrupt)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_inside_a_commit_waits_for_it_and_the_write_is_noted_as_kept(handler_installed):
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts.commit("ds@1.0.0") as labels:
        signal.raise_signal(signal.SIGINT)  # lands in the middle of the commit
        steps.append("committed")  # ... which goes on to its end
        labels.append("ds@1.0.0 (manifest)")
    assert steps == ["committed"]
    assert interrupts.kept() == ["ds@1.0.0", "ds@1.0.0 (manifest)"]


def test_a_commit_that_fails_is_not_noted(handler_installed):
    with pytest.raises(RuntimeError), interrupts.commit("ds@1.0.0"):
        raise RuntimeError("refused")
    assert interrupts.kept() == []


def test_the_cli_says_a_write_was_kept_and_succeeds_only_if_it_was_the_commands_write(handler_installed):
    import click

    from lensvault.cli._errors import run_with_errors

    @click.command()
    def one_write():
        with interrupts.commit("ds@1.0.0"):
            pass
        raise KeyboardInterrupt  # Ctrl-C while the result is printed

    assert run_with_errors(one_write, []) == 0
    interrupts.several_writes()  # a command of many writes (the quickstart) is still stopped
    assert run_with_errors(one_write, []) == 130


def test_without_a_commit_ctrl_c_is_an_interruption(handler_installed):
    import click

    from lensvault.cli._errors import run_with_errors

    @click.command()
    def nothing_written():
        raise KeyboardInterrupt

    assert run_with_errors(nothing_written, []) == 130


def _ctrl_c_then(original):
    def call(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)
    return call


@pytest.mark.parametrize("moment", ["ledger.record", "write_manifest_file"])
def test_a_snapshot_kept_by_a_ctrl_c_inside_its_commit_keeps_its_manifest_file(handler_installed, vault, tmp_path,
                                                                                 monkeypatch, moment):
    """The CI fault trials found a version committed under a held Ctrl-C whose manifest file was
    then removed, as if the commit had failed: the rule is that a kept write is kept whole."""
    from lensvault import ledger
    from lensvault.datasets import snapshot

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    owner, attr = (ledger, "record") if moment == "ledger.record" else (snapshot, "write_manifest_file")
    monkeypatch.setattr(owner, attr, _ctrl_c_then(getattr(owner, attr)))
    with pytest.raises(KeyboardInterrupt):
        vault.snapshot("ds", src, version="1.0.0")
    assert interrupts.kept() == ["ds@1.0.0"]
    assert vault.dataset("ds@1.0.0").version == "1.0.0"
    assert (vault.manifests_dir / "ds" / "1.0.0.json").is_file()
    assert vault.verify().ok


def test_a_snapshot_whose_commit_fails_leaves_no_manifest_file(handler_installed, vault, tmp_path, monkeypatch):
    from lensvault import ledger

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")

    def refused(*args, **kwargs):
        raise RuntimeError("refused")

    monkeypatch.setattr(ledger, "record", refused)
    with pytest.raises(RuntimeError):
        vault.snapshot("ds", src, version="1.0.0")
    assert interrupts.kept() == []
    assert not (vault.manifests_dir / "ds" / "1.0.0.json").exists()
