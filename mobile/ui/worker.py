"""One background thread for everything slow (sync, enrolment, fetching sites): the screen never freezes.

Jobs run one at a time, in order, so a sync and an enrolment never overlap on the
device. Results come back on the Kivy thread through ``Clock.schedule_once``.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from kivy.clock import Clock

log = logging.getLogger(__name__)


class Worker:
    """A single daemon thread that runs submitted calls and reports back on the UI thread."""

    def __init__(self, name: str = "fieldwatch-worker"):
        self._jobs: queue.Queue = queue.Queue()
        self._busy = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while a job is queued or running."""
        with self._lock:
            return self._busy > 0

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run ``fn()`` off the UI thread; then ``on_done(result)`` or ``on_error(exc)`` on the UI thread."""
        with self._lock:
            self._busy += 1
        self._jobs.put((fn, on_done, on_error))

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, on_done, on_error = job
            try:
                result, error = fn(), None
            except BaseException as exc:  # reported to the screen, never lost in the thread
                result, error = None, exc
                if on_error is None:
                    log.exception("background job failed")
            finally:
                with self._lock:
                    self._busy -= 1
            callback = (lambda dt, r=result: on_done(r)) if error is None else (lambda dt, e=error: on_error(e))
            if (on_done if error is None else on_error) is not None:
                Clock.schedule_once(callback, 0)
