"""The one thread a terminal's blocking calls run on."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any


class WorkerThread:
    """One daemon thread running submitted calls in order (a single-thread executor that never blocks
    interpreter exit, even when the terminal hangs in the middle of a call)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def submit(self, job: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((future, job))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            self._run_one(*item)
            del item  # hold nothing of the last job while idle (its terminal may be collected)

    @staticmethod
    def _run_one(future: concurrent.futures.Future[Any], job: Callable[[], Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return  # cancelled while queued: never started, so certainly not sent
        try:
            future.set_result(job())
        except BaseException as exc:  # the job itself catches everything expected
            future.set_exception(exc)


_MODULE_WORKERS: weakref.WeakKeyDictionary[Any, WorkerThread] = weakref.WeakKeyDictionary()
_MODULE_WORKERS_LOCK = threading.Lock()


def worker_for(module: Any, name: str) -> WorkerThread:
    """The one worker thread of a module object: the official module is one IPC session per process, so
    every terminal built on it in this process shares one thread and its calls stay serialised."""
    with _MODULE_WORKERS_LOCK:
        worker = _MODULE_WORKERS.get(module)
        if worker is None:
            worker = _MODULE_WORKERS[module] = WorkerThread(name)
            weakref.finalize(module, worker.stop)  # a module object that goes away frees its thread
        return worker
