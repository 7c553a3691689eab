"""Many independent runs at once: in this process, on a local process pool, or on a Dask cluster.

Every task is a pure function of its argument (fault draws are keyed hashes of the seed, DESIGN §8),
so *where* a task ran never changes its result: callers get ``(index, result)`` pairs in completion
order and put them back in order themselves. At most a few tasks per worker are in flight, so a
grid of a million runs never becomes a million pickled futures, and an interrupt loses only the
runs that were in progress.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 4


def default_workers() -> int:
    """Every core this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_init(expected_parent: int | None = None) -> None:
    """Run in each pool worker as it starts: it ignores Ctrl-C and ends with its parent.

    Ctrl-C reaches the whole process group; only the parent decides what to keep. A parent
    killed outright (SIGKILL, the OOM killer) runs no cleanup, so on Linux the kernel is asked to
    send the worker SIGTERM when its parent dies (``PR_SET_PDEATHSIG``) — without it the workers
    live on, re-parented to init, for good. The parent here is the process that forked the
    worker: the sweep itself (``expected_parent``, given for a forked pool: a parent killed
    before the worker got this far has already been replaced by init, and the worker must see
    that, not take init for its parent), or the forkserver, which ends with the sweep.
    """
    parent = os.getppid() if expected_parent is None else expected_parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the sweep: stop like Ctrl-C (the pool's workers are terminated, rows kept)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def imap_unordered(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int | None = None,
    dask: str | None = None,
) -> Iterator[tuple[int, R]]:
    """Yield ``(i, fn(tasks[i]))`` as runs finish.

    ``fn`` must be a module-level function (it is pickled by reference). ``dask`` is a scheduler
    address (``tcp://host:port``) or ``"local"`` for a loopback LocalCluster with ``workers``
    single-threaded worker processes. Closing the iterator early (or an interrupt) cancels what
    has not started and stops what is running.
    """
    if dask is not None:
        return _dask(fn, tasks, dask, workers)
    n = default_workers() if workers is None else workers
    if n <= 1 or len(tasks) <= 1:
        return ((i, fn(t)) for i, t in enumerate(tasks))
    return _pool(fn, tasks, min(n, len(tasks)))


def _pool(fn: Callable[[T], R], tasks: Sequence[T], n: int) -> Iterator[tuple[int, R]]:
    """Start the workers now (not on the first ``next``), so callers can start threads afterwards."""
    # fork is the cheapest start (no fresh interpreter, no re-import: ~0.05 s against ~1 s), and safe
    # while this process has a single thread; with threads about (a notebook kernel, a Dask client)
    # a forked child could inherit a held lock, so the forkserver starts workers from a clean process.
    single = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if single else "forkserver")
    if not single:
        ctx.set_forkserver_preload(["simulator.engine.run", "simulator.scenario.loader", "simulator.sweep.worker"])
    if single:
        # the children inherit the parent's heap copy-on-write; a collection in a child would touch
        # (and so copy) every inherited object, so park them in the permanent generation first
        gc.freeze()
    ex = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init,
                             initargs=(os.getpid() if single else None,))
    pending: dict[Future[R], int] = {}
    it = iter(enumerate(tasks))

    def refill() -> None:
        while len(pending) < n * IN_FLIGHT_PER_WORKER:
            nxt = next(it, None)
            if nxt is None:
                return
            pending[ex.submit(fn, nxt[1])] = nxt[0]

    try:
        refill()  # the first submit forks the workers
    except BaseException:
        _stop(ex)
        raise
    finally:
        if single:
            gc.unfreeze()
    return _drain(ex, pending, refill)


def _stop(ex: ProcessPoolExecutor) -> None:
    ex.shutdown(wait=False, cancel_futures=True)
    for child in multiprocessing.active_children():
        child.terminate()
    for child in multiprocessing.active_children():
        child.join(timeout=5)


def _drain(ex: ProcessPoolExecutor, pending: dict[Future[R], int], refill: Callable[[], None],
           ) -> Iterator[tuple[int, R]]:
    clean = False
    previous = _catch_sigterm()
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=pending.__getitem__):
                i = pending.pop(fut)
                yield i, fut.result()
            refill()
        clean = True
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if clean:
            ex.shutdown(wait=True)
        else:
            _stop(ex)


def _catch_sigterm() -> Any:
    """While the pool runs, SIGTERM stops it as Ctrl-C does (else the workers outlive the sweep);
    returns the handler to restore, None when this is not the main thread (signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def _dask(fn: Callable[[T], R], tasks: Sequence[T], address: str, workers: int | None) -> Iterator[tuple[int, R]]:
    from distributed import Client, LocalCluster, as_completed

    cluster: Any = None
    if address == "local":
        n = default_workers() if workers is None else max(1, workers)
        # loopback only, and no dashboard: it would otherwise listen on every interface
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address, timeout="30s")
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or (workers or 1))
        limit = n_workers * IN_FLIGHT_PER_WORKER
        it = iter(enumerate(tasks))
        index: dict[Any, int] = {}

        def submit() -> Any:
            nxt = next(it, None)
            if nxt is None:
                return None
            fut = client.submit(fn, nxt[1], pure=False)
            index[fut.key] = nxt[0]
            return fut

        first = [f for f in (submit() for _ in range(limit)) if f is not None]
        ac = as_completed(first)
        for fut in ac:
            i = index.pop(fut.key)
            res = fut.result()
            fut.release()
            nxt = submit()
            if nxt is not None:
                ac.add(nxt)
            yield i, res
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
