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
    public_model: bool = False  # with a token set, still send the playground the model's card and ONNX without it


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateRequest(_Body):
    n: StrictInt = Field(1, ge=1, description="images to generate (at most the server's max_images)")
    seed: StrictInt | None = Field(None, ge=0, lt=2**32, description="latent seed; the same seed gives the same bytes")
    label: StrictInt | StrictStr | None = Field(None, description="conditional models: class index or name")
    truncation: float | None = Field(
        None, ge=0.05, le=10, allow_inf_nan=False, description="redraw latent entries beyond this magnitude (0.05-10)"
    )
    psi: float | None = Field(
        None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="style-based models: truncation towards the average w (1 = none, 0 = the average image)",
    )
    noise: Literal["random", "zero"] | None = Field(
        None, description="models with noise inputs: 'random' (default) or 'zero' (deterministic images)"
    )
    inputs: dict[str, float | list] | None = Field(
        None,
        description="values for the generator's other inputs by name (GET /v1/models lists them with their "
        "roles, shapes and bounds): one value for every image, or a list with one per image",
    )
    format: Literal["png", "npy", "json"] = "png"


class StyleMixRequest(_Body):
    rows: list[StrictInt] = Field(
        ..., min_length=1, max_length=16, description="seeds of the row sources (their styles fill each row)"
    )
    cols: list[StrictInt] = Field(
        ..., min_length=1, max_length=16, description="seeds of the column sources (the styles mixed in)"
    )
    layers: Literal["coarse", "middle", "fine"] | list[StrictInt] = Field(
        "coarse", description="the styles taken from the column: a group (GET /v1/models: styles.groups) or indices"
    )
    psi: float = Field(1.0, ge=0, le=1, allow_inf_nan=False, description="truncation towards the average w")
    noise: Literal["random", "zero"] = Field("random", description="one noise draw shared by every image, or zeros")
    format: Literal["png", "npy", "json"] = "png"


class SynthesizeRequest(_Body):
    ws: list[list[list[float]]] = Field(
        ...,
        min_length=1,
        description="styles, one (num_ws, w_dim) array per image (GET /v1/models: styles), e.g. the ws of a "
        "projected real image (latentforge project)",
    )
    noise: Literal["random", "zero"] | list[list[float]] = Field(
        "zero", description="'zero', 'random' (seeded by seed), or one packed noise vector per image (a projection's)"
    )
    seed: StrictInt | None = Field(None, ge=0, lt=2**32, description="seeds the random noise")
    format: Literal["png", "npy", "json"] = "png"


class InterpolateRequest(_Body):
    seed_a: StrictInt = Field(..., ge=0, lt=2**32)
    seed_b: StrictInt = Field(..., ge=0, lt=2**32)
    steps: StrictInt = Field(8, ge=2, description="images along the path, ends included")
    method: Literal["slerp", "lerp"] = "slerp"
    label: StrictInt | StrictStr | None = None
    format: Literal["png", "npy", "json"] = "png"


def validation_message(errors, body=None) -> str:
    """FastAPI's validation errors -> one line naming each field and what to change; a body that
    is not JSON at all -> what is wrong and where (``body`` is the text FastAPI tried to parse)."""
    if errors and errors[0].get("type") == "json_invalid":
        return _json_message(errors[0], body)
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) + ("" if len(errors) <= 5 else f"; and {len(errors) - 5} more")


def _json_message(error, document) -> str:
    """'body is not valid JSON: expecting value at line 1 column 9': json.JSONDecodeError's own
    words (FastAPI passes them as ``ctx.error``) and its line and column, counted from 1."""
    reason = str(error.get("ctx", {}).get("error", "cannot be parsed"))
    # "Unterminated string starting at", "Invalid control character at": the position follows
    reason = (reason[:1].lower() + reason[1:]).removesuffix(" at")
    location = error.get("loc", ())
    position = location[-1] if location else None  # a character index into the document
    if not isinstance(document, str) or not isinstance(position, int) or not 0 <= position <= len(document):
        return f"body is not valid JSON: {reason}"
    line = document.count("\n", 0, position) + 1
    column = position - document.rfind("\n", 0, position)  # as json.JSONDecodeError.colno
    return f"body is not valid JSON: {reason} at line {line} column {column}"
