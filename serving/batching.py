"""Micro-batching: concurrent requests merged into one onnxruntime call.

A request waits at most ``max_latency_ms`` for company, and only while other requests are in
flight (a lone request runs at once); a batch holds at most
``max_batch_size`` images (a single larger request runs alone). The session runs in a worker
thread, so the event loop keeps accepting requests meanwhile. numpy only.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class _Job:
    feed: dict[str, np.ndarray]  # every generator input, batch first (GeneratorRuntime.feed)
    future: asyncio.Future

    @property
    def size(self) -> int:
        return len(next(iter(self.feed.values())))


class MicroBatcher:
    """Merges ``submit`` calls into batched ``run_feed(feed)`` calls of the current runtime: each
    input of the feeds is concatenated along the batch axis.

    Args:
        get_runtime: returns the runtime to use for the next batch (so a reload takes effect
            between batches, never inside one).
        max_batch_size: images per onnxruntime call (a larger single request runs alone).
        max_latency_ms: how long the first request of a batch waits for others.
        on_batch: called with each batch's image count (for metrics).
    """

    def __init__(self, get_runtime, max_batch_size: int = 64, max_latency_ms: float = 2.0, on_batch=None):
        self.get_runtime = get_runtime
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.on_batch = on_batch or (lambda size: None)
        self.queue: asyncio.Queue[_Job] | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxruntime")
        self.task: asyncio.Task | None = None
        self._carry: _Job | None = None
        self.inflight = 0  # submitted, not yet answered (queued, in the batch being built, or running)

    @property
    def jobs(self) -> asyncio.Queue[_Job]:
        """The queue of submitted jobs (made by ``start``, on the serving event loop)."""
        if self.queue is None:
            raise RuntimeError("the batcher is not started; await start() first")
        return self.queue

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The images for one request's ``feed`` (every input of the generator, batch first)."""
        future = asyncio.get_running_loop().create_future()
        self.inflight += 1
        try:
            await self.jobs.put(_Job(feed, future))
            return await future
        finally:
            self.inflight -= 1

    async def _next_batch(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        first = self._carry or await self.jobs.get()
        self._carry = None
        batch, total = [first], first.size
        deadline = loop.time() + self.max_latency
        while total < self.max_batch_size:
            try:
                job = self.jobs.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                # Wait for company only while other requests are in flight (their clients are
                # likely to send again); a lone request runs at once.
                if remaining <= 0 or self.inflight <= len(batch):
                    break
                try:
                    job = await asyncio.wait_for(self.jobs.get(), remaining)
                except TimeoutError:
                    break
            if total + job.size > self.max_batch_size:
                self._carry = job  # first of the next batch
                break
            batch.append(job)
            total += job.size
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            batch = [job for job in batch if not job.future.cancelled()]
            if not batch:
                continue
            try:
                feed = {name: np.concatenate([job.feed[name] for job in batch]) for name in batch[0].feed}
                runtime = self.get_runtime()
                images = await loop.run_in_executor(self.executor, runtime.run_feed, feed)
            except Exception as error:  # the session (or a feed from before a reload) failed: every request gets it
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            self.on_batch(len(images))
            start = 0
            for job in batch:
                if not job.future.done():
                    job.future.set_result(images[start : start + job.size])
                start += job.size
