"""Running QA on an existing Dask distributed cluster (``--executor dask://HOST:PORT``).

The same per-call function as the local pool (:func:`coach.qa.workers.run_task`) is
submitted to the cluster; each worker process keeps the model in a module global after
its first call, and results come back as they finish (``as_completed``) to be written to
the same log by this process. Workers need the ``coach`` package (same version) and read
the files themselves, by the paths given here: run them on machines that see SOURCE at
the same path (shared storage), e.g.::

    dask scheduler --port 8786
    dask worker tcp://qa-head:8786 --nworkers 2 --nthreads 1   # on each machine
    coach qa /mnt/calls --sample 10% --out qa/ --executor dask://qa-head:8786

Dask rather than Ray: a pure-Python pip install that fits our numpy stack, plain
``dask scheduler`` / ``dask worker`` commands, a small footprint on Python 3.11; Ray is a
large binary distribution with its own object store, more than a batch of independent
calls needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from coach.errors import CoachError, MissingDependency
from coach.qa.workers import Outcome, Task, run_task

__all__ = ["DaskExecutor", "scheduler_address", "spawn_cluster"]


def scheduler_address(spec: str) -> str:
    """``dask://host:port`` (or ``tcp://host:port``) -> the address a Client takes."""
    s = spec.strip()
    for prefix in ("dask://", "tcp://"):
        if s.startswith(prefix):
            rest = s[len(prefix):].strip("/")
            host, sep, port = rest.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise CoachError(f"--executor: expected dask://HOST:PORT, not {spec!r}")
            return f"tcp://{rest}"
    raise CoachError(f"--executor: expected dask://HOST:PORT, not {spec!r}")


class DaskExecutor:
    """Submits calls to a Dask cluster, at most two per worker thread in flight."""

    def __init__(self, spec: str, *, timeout_s: float = 10.0):
        try:
            from distributed import Client
        except ImportError as exc:
            raise MissingDependency("--executor dask:// needs dask[distributed] "
                                    "(pip install 'dask[distributed]')") from exc
        self.address = scheduler_address(spec)
        try:
            self.client = Client(self.address, timeout=f"{timeout_s}s",
                                 set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise CoachError(f"cannot reach the Dask scheduler at {self.address} "
                             f"({' '.join(str(exc).split()) or type(exc).__name__})") from exc
        self._futures: set[Any] = set()

    @property
    def slots(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:
            return 1

    def run(self, tasks: Iterable[Task]) -> Iterator[Outcome]:
        from distributed import as_completed

        pending = iter(tasks)
        owner: dict[str, Task] = {}

        def submit() -> Any | None:
            t = next(pending, None)
            if t is None:
                return None
            fut = self.client.submit(run_task, t, pure=False)
            owner[fut.key] = t
            self._futures.add(fut)
            return fut

        first = [f for f in (submit() for _ in range(2 * self.slots)) if f is not None]
        if not first:
            return
        ac = as_completed(first, loop=self.client.loop)
        for fut in ac:
            t = owner.pop(fut.key)
            self._futures.discard(fut)
            try:
                yield t, fut.result(), None
            except Exception as exc:  # worker died (KilledWorker), a bug: report it
                msg = " ".join(str(exc).split()) or type(exc).__name__
                if type(exc).__name__ == "NotVisible":
                    yield t, None, msg
                else:
                    yield t, None, (f"analysis failed on the cluster "
                                    f"({type(exc).__name__}: {msg})")
            finally:
                fut.release()
            nxt = submit()
            if nxt is not None:
                ac.add(nxt)

    def close(self) -> None:
        """Stop: cancel what is queued or running and let go of the cluster."""
        with contextlib.suppress(Exception):
            if self._futures:
                self.client.cancel(list(self._futures))
        with contextlib.suppress(Exception):
            self.client.close()


@contextlib.contextmanager
def spawn_cluster(n_workers: int = 2, threads: int = 1, *, timeout_s: float = 90.0
                  ) -> Iterator[str]:
    """A real scheduler and workers on this machine, as separate processes started with
    the ``dask scheduler`` / ``dask worker`` commands (for tests and benchmarks); yields
    ``dask://host:port`` and stops them all on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="coach-dask-"))
    info = tmp / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "start_new_session": True, "cwd": tmp}
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host",
                               "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], **quiet)]
    try:
        deadline = time.monotonic() + timeout_s
        while not info.exists() and time.monotonic() < deadline:
            if procs[0].poll() is not None:
                raise CoachError("the dask scheduler did not start")
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", str(n_workers),
             "--nthreads", str(threads), "--no-dashboard", "--local-directory", str(tmp),
             "--memory-limit", "0"], **quiet))
        from distributed import Client

        with Client(address, timeout=f"{timeout_s}s", set_as_default=False) as c:
            c.wait_for_workers(n_workers, timeout=timeout_s)
        yield "dask://" + address.removeprefix("tcp://")
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        for f in sorted(tmp.rglob("*"), reverse=True):
            with contextlib.suppress(OSError):
                f.unlink() if not f.is_dir() else f.rmdir()
        with contextlib.suppress(OSError):
            tmp.rmdir()
