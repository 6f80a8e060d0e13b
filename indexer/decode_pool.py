"""Decoding in parallel worker processes, feeding the model in the main process.

At most `window` jobs are in flight, so memory holds a bounded number of decoded files however large
the library. A decoder that crashes its process (a malicious file can make a C library segfault) breaks
the whole executor and fails every job in flight; the pool then starts new workers and retries those
jobs one at a time, so the one that crashes again alone is the culprit and is reported as failed,
while the others go on.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .decode import DecodeFailed, DecodeJob, DecodeResult, run_job

#: How often a worker checks that the indexing process that started it is still there.
PARENT_POLL_S = 0.5


class DecodePool:
    """Run `run_job` over jobs in `workers` processes (0: in this process, one at a time)."""

    def __init__(self, workers: int, window: int | None = None) -> None:
        self.workers = workers
        self.window = window or max(2, 2 * workers)
        self._queue: deque[DecodeJob] = deque()
        self._suspects: deque[DecodeJob] = deque()  # in flight during a crash: retried alone
        self._inflight: dict[Future[DecodeResult], DecodeJob] = {}
        self._isolating = False  # a suspect is running: nothing else may run beside it
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, jobs: Iterable[DecodeJob]) -> None:
        self._queue.extend(jobs)

    @property
    def done(self) -> bool:
        """Nothing queued and nothing in flight."""
        return not (self._queue or self._suspects or self._inflight)

    def poll(self, block: bool, timeout: float | None = None) -> list[DecodeResult]:
        """Results of the jobs that have finished; with `block`, wait until at least one has (at most
        `timeout` seconds when given; unless the pool is done)."""
        if self.workers == 0:  # decoding inline: one job per call, whether or not the caller would wait
            return [run_job(self._queue.popleft())] if self._queue else []
        self._fill()
        if not self._inflight:
            return []
        finished, _ = wait(list(self._inflight), timeout=timeout if block else 0, return_when=FIRST_COMPLETED)
        results: list[DecodeResult] = []
        crashed: list[DecodeJob] = []
        for future in finished:
            job = self._inflight.pop(future)
            try:
                results.append(future.result())
            except BrokenProcessPool:
                crashed.append(job)
        if crashed:
            results += self._after_crash(crashed)
        elif self._isolating and not self._inflight:
            self._isolating = False
        self._fill()
        return results

    def _after_crash(self, crashed: list[DecodeJob]) -> list[DecodeResult]:
        """The executor is gone: every job still in flight failed with it."""
        crashed += self._inflight.values()
        self._inflight.clear()
        self.close()
        if self._isolating:  # the suspect ran alone, so it is the culprit
            self._isolating = False
            return [DecodeFailed(job, "the decoder crashed on this file") for job in crashed]
        self._suspects.extend(crashed)
        return []

    def _fill(self) -> None:
        if self._isolating:
            return
        if self._suspects:
            if not self._inflight:
                self._isolating = True
                self._start(self._suspects.popleft())
            return
        while self._queue and len(self._inflight) < self.window:
            self._start(self._queue.popleft())

    def _start(self, job: DecodeJob) -> None:
        if self._executor is None:
            # spawn: workers must not inherit the main process's torch threads (fork would deadlock).
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
            )
        self._inflight[self._executor.submit(run_job, job)] = job


def _exit_with_parent(parent: int) -> None:
    """In each worker: exit as soon as the indexing process is gone. A `kill -9` of the parent gives
    its workers no signal, and idle ones would otherwise wait on their queue forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
