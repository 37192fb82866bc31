"""The server's Prometheus metrics: request counters, latency and batch-size histograms and the
reload counter, rendered in the Prometheus text format (no client library needed)."""

from __future__ import annotations

import threading

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Counters and histograms in the Prometheus text format (no client library needed)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.batches = [0] * (len(BATCH_BUCKETS) + 1)
        self.batch_images = 0
        self.reloads = 0

    def observe(self, path: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(path, status)] = self.requests.get((path, status), 0) + 1
            counts = self.latency.setdefault(path, [0] * (len(LATENCY_BUCKETS) + 1))
            counts[_bucket(seconds, LATENCY_BUCKETS)] += 1
            self.latency_sum[path] = self.latency_sum.get(path, 0.0) + seconds

    def observe_batch(self, size: int) -> None:
        with self.lock:
            self.batches[_bucket(size, BATCH_BUCKETS)] += 1
            self.batch_images += size

    def render(self) -> str:
        lines = ["# TYPE latentforge_requests_total counter"]
        with self.lock:
            for (path, status), count in sorted(self.requests.items()):
                lines.append(f'latentforge_requests_total{{path="{path}",status="{status}"}} {count}')
            lines.append("# TYPE latentforge_request_seconds histogram")
            for path, counts in sorted(self.latency.items()):
                lines += _histogram("latentforge_request_seconds", f'path="{path}",', LATENCY_BUCKETS, counts)
                lines.append(f'latentforge_request_seconds_sum{{path="{path}"}} {self.latency_sum[path]:.6f}')
            lines.append("# TYPE latentforge_batch_size histogram")
            lines += _histogram("latentforge_batch_size", "", BATCH_BUCKETS, self.batches)
            lines.append(f"latentforge_batch_size_sum {self.batch_images}")
            lines.append("# TYPE latentforge_reloads_total counter")
            lines.append(f"latentforge_reloads_total {self.reloads}")
        return "\n".join(lines) + "\n"


def _bucket(value: float, bounds) -> int:
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def _histogram(name: str, labels: str, bounds, counts) -> list[str]:
    lines, cumulative = [], 0
    for bound, count in zip(bounds, counts):
        cumulative += count
        lines.append(f'{name}_bucket{{{labels}le="{bound}"}} {cumulative}')
    cumulative += counts[-1]
    lines.append(f'{name}_bucket{{{labels}le="+Inf"}} {cumulative}')
    lines.append(f"{name}_count{{{labels.rstrip(',')}}} {cumulative}" if labels else f"{name}_count {cumulative}")
    return lines
