"""The boundary between the sandbox and the host: plain JSON plus numpy arrays in ``.npz``.

The probe side writes ``observations.json`` (one record per check) and ``arrays.npz``; the host
reads them back here with size caps, a depth cap, ``allow_pickle=False``, and exact-type
validation of every record against its check kind's ``Observation`` model. Nothing the sandbox
writes is ever unpickled or executed, and nothing it writes can name a score: unknown keys are
an invalid output.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, ValidationError

FORMAT = 1
JSON_NAME, ARRAYS_NAME = "observations.json", "arrays.npz"
MAX_JSON_BYTES = 8 * 2**20
MAX_ARRAYS_BYTES = 256 * 2**20
MAX_DEPTH = 24
ARRAY_REF = "$array"


def _exact_array(value: Any) -> np.ndarray:
    if type(value) is not np.ndarray:
        raise ValueError(f"expected a numpy array, got {type(value).__name__}")
    if value.dtype.kind not in "biuf":
        raise ValueError(f"arrays must be numeric, got dtype {value.dtype}")
    return value


Array = Annotated[np.ndarray, PlainValidator(_exact_array), PlainSerializer(lambda a: a)]


class InvalidOutput(Exception):
    """The sandbox's output breaks the boundary's rules (size, depth, types, keys)."""


class StudentError(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    message: str
    during: str
    traceback: str


class Unresolved(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    target: str
    looked_for: str
    problem: Literal["missing", "ambiguous", "unbuildable"]
    candidates: list[str]


class ProbeRecord(BaseModel):
    """What the probe side reports for one check. ``data`` is validated per kind on the host."""

    model_config = ConfigDict(extra="forbid", strict=True)
    check: str
    status: Literal["observed", "raised", "unresolved", "probe-error"]
    found_as: str | None = None
    found_how: str | None = None
    built_as: str | None = None   # how the check built the target, when not with its own arguments
    data: dict[str, Any] | None = None
    error: StudentError | None = None
    unresolved: Unresolved | None = None
    seconds: float = 0.0


class ObservationDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    format: Literal[1]
    records: list[ProbeRecord]


# ---------------------------------------------------------------- probe side: writing


class ArrayWriter:
    """Collects arrays while records are encoded; each array becomes ``{"$array": key}``."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(self.arrays)}"
            self.arrays[key] = np.ascontiguousarray(value)
            return {ARRAY_REF: key}
        if isinstance(value, dict):
            return {str(k): self.encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.encode(v) for v in value]
        return value


def write(out_dir: Path, records: list[dict[str, Any]], writer: ArrayWriter) -> None:
    """Write the document and arrays (called in the sandbox, by the probe side)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / ARRAYS_NAME, **writer.arrays)
    text = json.dumps({"format": FORMAT, "records": records}, allow_nan=True)
    (out_dir / JSON_NAME).write_text(text)


# ---------------------------------------------------------------- host side: reading


def load(out_dir: Path) -> tuple[ObservationDoc, dict[str, np.ndarray]]:
    """Read and validate the sandbox's output. Raises ``FileNotFoundError`` if there is none and
    ``InvalidOutput`` if it breaks a rule."""
    doc_path, arrays_path = out_dir / JSON_NAME, out_dir / ARRAYS_NAME
    if doc_path.is_symlink():
        raise InvalidOutput("the observations file is a symbolic link")
    if not doc_path.exists():
        raise FileNotFoundError(doc_path)
    if not doc_path.is_file():
        raise InvalidOutput("the observations file is not a regular file")
    size = doc_path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InvalidOutput(f"observations are {size:,} bytes, over the {MAX_JSON_BYTES:,}-byte cap")
    try:
        raw = json.loads(doc_path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise InvalidOutput(f"observations are not valid JSON: {str(exc)[:200]}") from None
    _check_depth(raw)
    try:
        doc = ObservationDoc.model_validate(raw)
    except ValidationError as exc:
        raise InvalidOutput(f"observations do not match the schema: {_first_error(exc)}") from None
    return doc, _load_arrays(arrays_path)


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise InvalidOutput(f"observations are nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    if path.is_symlink() or not path.is_file():
        raise InvalidOutput("the arrays file is not a regular file")
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
        if total > MAX_ARRAYS_BYTES:
            raise InvalidOutput(f"arrays unpack to {total:,} bytes, over the {MAX_ARRAYS_BYTES:,}-byte cap")
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except InvalidOutput:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable archive is the sandbox's fault
        raise InvalidOutput(f"the arrays file cannot be read without pickle: {str(exc)[:200]}") from None


def decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Replace ``{"$array": key}`` references with the arrays they name."""
    if isinstance(value, dict):
        if set(value) == {ARRAY_REF}:
            key = value[ARRAY_REF]
            if not isinstance(key, str) or key not in arrays:
                raise InvalidOutput(f"a record refers to a missing array {key!r}")
            return arrays[key]
        return {k: decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    return value


def validate_data(model: type[BaseModel], data: dict[str, Any], arrays: dict[str, np.ndarray]) -> BaseModel:
    """Validate one record's data against its kind's ``Observation`` model (strict, closed)."""
    try:
        return model.model_validate(decode(data, arrays))
    except ValidationError as exc:
        raise InvalidOutput(f"{_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    extra = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{loc or 'document'}: {err['msg']}{extra}"
