"""What the server accepts: its settings and the JSON request bodies, each field with its bounds
(checked by pydantic at the edge), and the one-line message a client reads when a body is
refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class ServeSettings(BaseModel):
    model: str
    max_batch_size: int = 64
    max_latency_ms: float = 2.0
    max_images: int = 256  # per request
    max_body_bytes: int = 1_000_000
    threads: int = 0  # onnxruntime intra-op threads; 0 = its default
    spinning: bool = False  # let idle onnxruntime threads spin (steals CPU from the event loop on small boxes)
    poll_seconds: float = 0.0  # re-resolve the model URI this often (0 = only on /v1/admin/reload)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateRequest(_Body):
    n: StrictInt = Field(1, ge=1, description="images to generate (at most the server's max_images)")
    seed: StrictInt | None = Field(None, ge=0, lt=2**32, description="latent seed; the same seed gives the same bytes")
    label: StrictInt | StrictStr | None = Field(None, description="conditional models: class index or name")
    truncation: float | None = Field(
        None, ge=0.05, le=10, allow_inf_nan=False, description="redraw latent entries beyond this magnitude (0.05-10)"
    )
    format: Literal["png", "npy", "json"] = "png"


class InterpolateRequest(_Body):
    seed_a: StrictInt = Field(..., ge=0, lt=2**32)
    seed_b: StrictInt = Field(..., ge=0, lt=2**32)
    steps: StrictInt = Field(8, ge=2, description="images along the path, ends included")
    method: Literal["slerp", "lerp"] = "slerp"
    label: StrictInt | StrictStr | None = None
    format: Literal["png", "npy", "json"] = "png"


def validation_message(errors) -> str:
    """FastAPI's validation errors -> one line naming each field and what to change."""
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) + ("" if len(errors) <= 5 else f"; and {len(errors) - 5} more")
