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
    z: np.ndarray
    labels: np.ndarray | None
    future: asyncio.Future


class MicroBatcher:
    """Merges ``submit`` calls into batched ``run(z, labels)`` calls of the current runtime.

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

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        self.inflight += 1
        try:
            await self.queue.put(_Job(z, labels, future))
            return await future
        finally:
            self.inflight -= 1

    async def _next_batch(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        first = self._carry or await self.queue.get()
        self._carry = None
        batch, total = [first], len(first.z)
        deadline = loop.time() + self.max_latency
        while total < self.max_batch_size:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                # Wait for company only while other requests are in flight (their clients are
                # likely to send again); a lone request runs at once.
                if remaining <= 0 or self.inflight <= len(batch):
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            if total + len(job.z) > self.max_batch_size:
                self._carry = job  # first of the next batch
                break
            batch.append(job)
            total += len(job.z)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            batch = [job for job in batch if not job.future.cancelled()]
            if not batch:
                continue
            z = np.concatenate([job.z for job in batch])
            labels = None
            if batch[0].labels is not None:
                labels = np.concatenate([job.labels for job in batch])
            try:
                runtime = self.get_runtime()
                images = await loop.run_in_executor(self.executor, runtime.run, z, labels)
            except Exception as error:  # the session failed: every waiting request gets the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            self.on_batch(len(z))
            start = 0
            for job in batch:
                if not job.future.done():
                    job.future.set_result(images[start : start + len(job.z)])
                start += len(job.z)
