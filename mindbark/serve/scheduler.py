"""Chunks of concurrent requests gathered into batched generations, run one batch at a time in one thread.

MindSpore is not made for concurrent calls, so one worker thread owns the model: it loads it, then takes the oldest
waiting chunk and every other waiting chunk with the same generation settings (up to the batch size, FIFO), runs
them as one batch, and hands each chunk its result through a `concurrent.futures.Future` the event loop awaits.
Chunks carry their own voice and random generator, so a batch mixes voices and requests freely and a chunk's audio
equals its solo run. A chunk whose request has gone (client left, time limit, shutdown) is dropped before its batch
starts, or at the next stage boundary of a batch already running.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field

import numpy as np

from ..generation.config import GenerationConfig

log = logging.getLogger("mindbark.serve")


class Ticket:
    """One request's stake in the queue: abandoning it cancels its chunks that have not run yet."""

    def __init__(self):
        self.abandoned = False
        self.jobs = []

    def abandon(self):
        self.abandoned = True
        for job in self.jobs:
            job.future.cancel()  # a no-op for a running chunk: the worker checks `abandoned` between stages


@dataclass(eq=False)
class Job:
    """One chunk of one request: what to say, in which voice, with which settings and random generator."""

    text: str
    voice: dict | None
    config: GenerationConfig
    rng: np.random.Generator
    ticket: Ticket
    future: Future = field(default_factory=Future)


class Scheduler:
    """A bounded worker that batches jobs.

    Args:
        run_batch: called in the worker thread with a list of running jobs and `alive(job) -> bool`; it sets each
            alive job's future. An exception fails the batch's jobs, never the worker.
        batch_size: jobs per batch at most.
        batch_wait: seconds to wait for more jobs once the first of a batch is there.
        on_depth: called with the number of waiting jobs whenever it changes.
    """

    def __init__(self, run_batch: Callable, batch_size: int, batch_wait: float = 0.0,
                 on_depth: Callable[[int], None] = lambda n: None):
        self.run_batch, self.batch_size, self.batch_wait, self.on_depth = run_batch, batch_size, batch_wait, on_depth
        self._pending = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = None

    def start(self, setup: Callable[[], None] = lambda: None):
        """Start the worker; it runs `setup` (loading the model) before its first batch."""
        self._thread = threading.Thread(target=self._work, args=(setup,), name="mindbark-generation", daemon=True)
        self._thread.start()

    def submit(self, jobs: list[Job]):
        """Queue `jobs` (from any thread); they run in order among the jobs with the same settings."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the scheduler is closed")
            for job in jobs:
                job.ticket.jobs.append(job)
            self._pending.extend(jobs)
            self.on_depth(len(self._pending))
            self._cond.notify()

    def close(self, timeout: float | None = None):
        """Cancel waiting jobs, stop a running batch at its next stage boundary, and wait for the worker."""
        with self._cond:
            self._closing = True
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()
            self.on_depth(0)
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _alive(self, job: Job) -> bool:
        return not (job.ticket.abandoned or self._closing)

    def _work(self, setup):
        try:
            setup()
        except Exception:
            log.exception("the model failed to load")
            return
        while (jobs := self._take()) is not None:
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                self.run_batch(jobs, self._alive)
            except Exception as e:  # a failing batch answers its requests with an error; the worker goes on
                log.exception("a batch of %d chunks failed", len(jobs))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(e)
            for job in jobs:  # dropped mid-batch: its request is gone, the future only needs an end
                if not job.future.done():
                    job.future.set_exception(CancelledError())

    def _take(self) -> list[Job] | None:
        """The next batch: the oldest waiting job and the next ones with its settings; None once closing."""
        with self._cond:
            while not self._closing:
                self._pending = deque(j for j in self._pending if not j.future.cancelled())
                if self._pending:
                    break
                self.on_depth(0)
                self._cond.wait()
            if self._closing:
                return None
            config = self._pending[0].config
            deadline = time.monotonic() + self.batch_wait
            while (sum(j.config == config for j in self._pending) < self.batch_size and not self._closing and
                   (left := deadline - time.monotonic()) > 0):
                self._cond.wait(left)
            batch = [j for j in self._pending if j.config == config][:self.batch_size]
            taken = set(map(id, batch))
            self._pending = deque(j for j in self._pending if id(j) not in taken)
            self.on_depth(len(self._pending))
            return batch

    @property
    def depth(self) -> int:
        with self._cond:
            return len(self._pending)
