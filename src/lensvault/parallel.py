"""Per-file work (read, hash, link, copy) spread over worker processes.

Why processes and not threads: on the 2-core VM the benchmarks run on, a thread
pool hashing 10,000 small files was *slower* than one thread (the threads spend
their time in futex waits for the GIL, and every read buffer's mmap/munmap
forces a TLB shoot-down across the process's threads), while two forked
processes did the same read+hash+link work 1.7x faster than one. Forking costs
a few milliseconds and nothing is imported again, so small jobs stay in-process.

Workers ignore SIGINT: Ctrl-C reaches the parent, which cancels queued chunks,
waits for the running ones (a chunk is a few milliseconds of work) and then
cleans up, so no worker writes after the caller's cleanup has run.
"""

from __future__ import annotations

import functools
import os
import signal
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Generic, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

__all__ = ["ChunkMapper", "ForkedCall", "dies_with_this_process", "map_chunks", "sigint_held", "worker_count"]

# Below this many items the fork and the result pickling cost more than they save.
MIN_ITEMS = 1500
CHUNK = 256

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")
_Params = ParamSpec("_Params")


def worker_count() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    env = os.environ.get("LENSVAULT_WORKERS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(8, cpus))


# libc's prctl, looked up in the parent: a worker must import nothing (see _worker_init).
# None: not looked up yet; False: there is none.
_PRCTL: Callable[..., int] | Literal[False] | None = None


def _prctl() -> Callable[..., int] | Literal[False]:
    global _PRCTL
    if _PRCTL is None:
        try:
            import ctypes

            _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _PRCTL = False
    return _PRCTL


def _worker_init(parent: int) -> None:
    """In a worker: Ctrl-C is the parent's to handle; and the worker dies with its parent.

    A pool worker waits for work on a pipe whose write end every worker also holds (fork
    copies it), so a parent killed with SIGKILL never sends it EOF: without this, orphaned
    workers lived on forever, holding the terminal and whatever they had half-written.
    Nothing is imported here: a thread of the parent (the pyarrow prefetch) may have held
    an import lock at the fork, and the worker would wait for it forever.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)


def _die_with(parent: int) -> None:
    if _PRCTL:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)


def dies_with_this_process() -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGKILL when this process dies
    (Linux; elsewhere it does nothing). Between fork and exec the child imports nothing: the
    function it calls is looked up here, in the parent."""
    _prctl()
    return functools.partial(_die_with, os.getpid())


@contextmanager
def sigint_held() -> Iterator[None]:
    """Hold Ctrl-C back while threads or processes are started and work is queued.

    A KeyboardInterrupt raised inside ``Thread.start()`` or a pool's ``submit``
    leaves a thread running that the pool never recorded: ``shutdown`` does not
    wait for it, and it goes on writing after the caller's cleanup (a checkout's
    staging folder survived Ctrl-C that way, 1 run in 40). With SIGINT blocked,
    the signal stays pending and is delivered when the block ends, at a point
    where the pool knows every worker it has. Threads and forked children
    started inside inherit the block, so the main thread is the one that gets it.
    """
    from lensvault.interrupts import held

    if not hasattr(signal, "pthread_sigmask"):  # not POSIX: nothing to block
        with held():
            yield
        return
    with held():  # the handler's side: a SIGINT another thread received waits too (see interrupts)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _can_fork() -> bool:
    return hasattr(os, "fork") and hasattr(os, "register_at_fork")  # POSIX; not Windows


class ChunkMapper(Generic[_Item, _Result]):
    """Apply ``fn`` to parts of a stream of items, in worker processes once the stream is big enough.

    ``feed`` items as they are found (a folder scan, say); parts are submitted
    while the caller keeps going, so scanning and hashing overlap. ``results``
    then yields ``fn(part)`` part by part, in feeding order. Use as a context
    manager: leaving it stops the workers (queued parts are cancelled, running
    ones finish) before any cleanup of the caller's runs.

    ``fn`` must be picklable by reference (a module-level function or a
    ``functools.partial`` of one with picklable arguments) and return one
    result per item of its part. The first exception raised by any part
    propagates unchanged.
    """

    def __init__(self, fn: Callable[[list[_Item]], list[_Result]], *, chunk: int = CHUNK,
                 min_items: int = MIN_ITEMS) -> None:
        self.fn = fn
        self.chunk = chunk
        self.min_items = min_items
        self._buf: list[_Item] = []
        self._parts: list[tuple[int, Future[list[_Result]] | None]] = []  # (size, its future; None once yielded)
        self._pool: ProcessPoolExecutor | None = None
        self._fed = 0
        self._workers = worker_count()
        self._can_pool = self._workers >= 2 and _can_fork()

    def __enter__(self) -> ChunkMapper[_Item, _Result]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def feed(self, items: Sequence[_Item]) -> None:
        self._buf.extend(items)
        self._fed += len(items)
        if self._pool is None and self._can_pool and self._fed >= self.min_items:
            self._start()
        if self._pool is not None:
            while len(self._buf) >= self.chunk:
                self._submit(self._buf[: self.chunk])
                del self._buf[: self.chunk]

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with sigint_held():
            # An import interrupted by Ctrl-C can leave the import lock held while another thread
            # (the pyarrow prefetch) waits for it: both threads then wait for ever.
            _prctl()

        with warnings.catch_warnings():
            # Python >= 3.12 warns about fork() in a process with threads (a progress
            # bar's refresher, the catalog opener): workers only run ``fn``, never
            # a lock those threads hold.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_worker_init, initargs=(os.getpid(),))

    def _submit(self, part: list[_Item]) -> None:
        pool = self._pool
        assert pool is not None  # parts are submitted only once _start made the pool
        with sigint_held():  # submit may start the workers and the pool's manager thread
            self._parts.append((len(part), pool.submit(self.fn, part)))

    def results(self, on_done: Callable[[int], None] | None = None) -> Iterator[list[_Result]]:
        """Yield each part's results in order: of everything fed since the last call (feed a
        stream's batches one after the other, taking each batch's results, in one pool)."""
        buf, self._buf = self._buf, []
        if self._pool is not None:
            for i in range(0, len(buf), self.chunk):
                self._submit(buf[i : i + self.chunk])
            parts, self._parts = self._parts, []
            for k in range(len(parts)):
                # Each part is let go of once yielded: a finished future keeps its result, and
                # a million-file snapshot held every worker's answers until the end (~0.7 KB a file).
                size, future = parts[k]
                parts[k] = (size, None)
                assert future is not None  # (each part is yielded once)
                result = _result_of(future)
                if on_done:
                    on_done(size)
                yield result
            return
        for i in range(0, len(buf), self.chunk):
            part = buf[i : i + self.chunk]
            result = self.fn(part)
            if on_done:
                on_done(len(part))
            yield result

    def waiting(self) -> int:
        """Items fed whose results have not been yielded yet."""
        return len(self._buf) + sum(size for size, _ in self._parts)

    def ready(self, keep: int, on_done: Callable[[int], None] | None = None) -> Iterator[list[_Result]]:
        """Yield the oldest parts' results, in order, until at most ``keep`` fed items wait: for a
        caller that feeds a long stream (a new folder's walk) and must not hold every item's
        bookkeeping until the end. ``results`` then yields the rest. In-process (no pool), the
        oldest whole parts are run here."""
        waiting = self.waiting()
        if self._pool is None:
            while waiting > keep and len(self._buf) >= self.chunk:
                part = self._buf[: self.chunk]
                del self._buf[: self.chunk]
                result = self.fn(part)
                waiting -= len(part)
                if on_done:
                    on_done(len(part))
                yield result
            return
        while waiting > keep and self._parts:
            size, future = self._parts.pop(0)  # (a few hundred parts at most: keep / chunk)
            assert future is not None
            result = _result_of(future)
            waiting -= size
            if on_done:
                on_done(size)
            yield result

    def close(self) -> None:
        if self._pool is not None:
            with sigint_held():  # a second Ctrl-C must not cut the wait for running parts short
                self._pool.shutdown(wait=True, cancel_futures=True)


def _result_of(future: Future[_Result]) -> _Result:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as e:
        from lensvault.errors import LensVaultError

        raise LensVaultError("a worker process died (killed, or out of memory)", where=f"pid {os.getpid()}",
                             fix="run the command again; if it keeps failing, set LENSVAULT_WORKERS=1") from e


def map_chunks(
    fn: Callable[[list[_Item]], list[_Result]],
    items: Sequence[_Item],
    *,
    on_done: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
    min_items: int = MIN_ITEMS,
) -> Iterator[list[_Result]]:
    """Yield ``fn(part)`` for consecutive parts of ``items``, in order (see ``ChunkMapper``)."""
    with ChunkMapper(fn, chunk=chunk, min_items=min_items) as mapper:
        mapper.feed(items)
        yield from mapper.results(on_done)


class ForkedCall(Generic[_Result]):
    """Run ``fn(*args, **kwargs)`` in a forked child while this process does something else.

    The child sees this process's memory as it was at the fork (nothing is
    pickled on the way in); its result or exception comes back pickled. For
    work that holds the GIL, such as a folder walk, while the caller imports
    and opens the catalog: a thread would take turns with it, a child runs
    beside it. Use as a context manager; leaving early kills the child. Where
    fork is unavailable the call simply runs in-process on ``result()``.
    """

    def __init__(self, fn: Callable[_Params, _Result], *args: _Params.args, **kwargs: _Params.kwargs) -> None:
        self._call = (fn, args, kwargs)
        self._pid: int | None = None
        self._fd: int | None = None
        if worker_count() < 2 or not _can_fork():
            return
        r, w = os.pipe()
        with sigint_held(), warnings.catch_warnings():
            # held so that Ctrl-C cannot land between the fork and recording the pid
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, Python >= 3.12
            pid = os.fork()
            if pid:
                os.close(w)
                self._pid, self._fd = pid, r
            else:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # before the block ends: Ctrl-C is the parent's
        if pid == 0:  # the child: never returns
            code = 0
            try:
                os.close(r)
                try:
                    payload: tuple[str, object] = ("ok", fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001 - sent to the parent as is
                    payload = ("err", e)
                import pickle

                try:
                    data = pickle.dumps(payload, protocol=5)
                except Exception as e:  # noqa: BLE001 - an unpicklable result goes back as its text
                    data = pickle.dumps(("err", RuntimeError(f"{type(e).__name__}: {e}")), protocol=5)
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view):]
            except BaseException:  # noqa: BLE001 - the child exits, whatever happened; the parent reports it
                code = 1
            finally:
                os._exit(code)

    def __enter__(self) -> ForkedCall[_Result]:
        return self

    @property
    def forked(self) -> bool:
        """Whether a child runs the call (False: ``result()`` runs it in this process)."""
        return self._pid is not None

    def __exit__(self, *exc: object) -> None:
        self.close()

    def result(self) -> _Result:
        if self._pid is None:
            fn, args, kwargs = self._call
            return fn(*args, **kwargs)
        import pickle

        fd = self._fd
        assert fd is not None  # a child was forked: its pipe is open until close()
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        self.close()
        if not chunks:
            from lensvault.errors import LensVaultError

            raise LensVaultError("a worker process died (killed, or out of memory)", where=f"pid {os.getpid()}",
                                 fix="run the command again; if it keeps failing, set LENSVAULT_WORKERS=1")
        kind, value = pickle.loads(b"".join(chunks))
        if kind == "err":
            raise value
        result: _Result = value  # what fn returned, in the child
        return result

    def close(self, *, wait: bool = False) -> None:
        """End the child: killed, or with ``wait`` left to finish (a child that writes into the
        store must not be killed mid-write: its temp file would stay behind)."""
        if self._pid is None:
            return
        pid, self._pid = self._pid, None
        if not wait:
            try:
                os.kill(pid, signal.SIGKILL)  # a no-op for a child that is done
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
        if self._fd is not None:
            os.close(self._fd)
