"""The boundary between the sandbox and the host: plain JSON plus numpy arrays in ``.npz``.

The probe side writes ``observations.json`` (one record per check) and ``arrays.npz``; the host
reads them back here with size caps, a depth cap, ``allow_pickle=False``, and exact-type
validation of every record against its check kind's ``Observation`` model. Nothing the sandbox
writes is ever unpickled or executed, and nothing it writes can name a score: unknown keys are
an invalid output.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, ValidationError

FORMAT = 1
JSON_NAME, ARRAYS_NAME = "observations.json", "arrays.npz"
MAX_JSON_BYTES = 32 * 2**20  # graphs of hand-written ops take room (grader.artifacts)
MAX_ARRAYS_BYTES = 256 * 2**20
MAX_DEPTH = 24
MAX_ARRAYS = 20_000  # arrays in one run: far more than every check of a rubric writes
MAX_ZIP_DIRECTORY_BYTES = 4 * 2**20  # zipfile holds every directory entry in memory at once
ARRAY_REF = "$array"


def _exact_array(value: Any) -> np.ndarray:
    if type(value) is not np.ndarray:
        raise ValueError(f"expected a numpy array, got {type(value).__name__}")
    # Booleans are left out on purpose: no probe writes them, and the judges' arithmetic
    # (``got - expected``) is not defined on them.
    if value.dtype.kind not in "iuf":
        raise ValueError(f"arrays must be numeric (integers or floats), got dtype {value.dtype}")
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
    ``InvalidOutput`` if it breaks a rule; the message says which rule, and where."""
    raw = parse_json(read_capped(out_dir / JSON_NAME, MAX_JSON_BYTES, "the observations file"), "observations")
    try:
        doc = ObservationDoc.model_validate(raw)
    except ValidationError as exc:
        raise InvalidOutput(f"observations do not match the schema: {first_error(exc)}") from None
    _check_unique_checks(doc.records)
    try:
        arrays = _load_arrays(out_dir / ARRAYS_NAME)
    except FileNotFoundError:
        arrays = {}
    return doc, arrays


def read_capped(path: Path, cap: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``cap`` bytes that the sandbox wrote.

    Opened without following a link and without blocking, then checked on the open descriptor:
    at the ``process`` level the student's code could have put a link to ``/dev/zero`` or a FIFO
    there, and reading either would never end. Raises ``FileNotFoundError`` when there is no
    such file and ``InvalidOutput`` when it is not a small regular file."""
    with open(_open_regular(path, what), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise InvalidOutput(f"{what} ({path.name}) is {size:,} bytes, over the {cap:,}-byte cap")
        data = f.read(cap + 1)
    if len(data) > cap:  # it grew after the check: something still writes to it
        raise InvalidOutput(f"{what} ({path.name}) is over the {cap:,}-byte cap")
    return data


def _open_regular(path: Path, what: str) -> int:
    """A descriptor of ``path`` if it is a regular file; links, FIFOs, devices and folders are refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        if path.is_symlink():
            raise InvalidOutput(f"{what} ({path.name}) is a symbolic link, not a regular file") from None
        raise InvalidOutput(f"{what} ({path.name}) cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidOutput(f"{what} ({path.name}) is not a regular file")
    return fd


def parse_json(data: bytes, what: str) -> Any:
    """Parse JSON the sandbox wrote, as strictly as it was written.

    UTF-8 only; no key twice in one object (which copy would count is a parser's whim); integers
    within 64 bits (every count and shape a probe reports fits, and a 4,000-digit one would only
    break arithmetic later); nesting at most ``MAX_DEPTH`` deep. ``NaN`` and ``Infinity`` are
    kept: the writer emits them for a loss that diverged, and the judges handle them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidOutput(f"{what} are not UTF-8: byte {exc.start} is {data[exc.start:exc.start + 1]!r}") from None
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_bounded_int)
    except InvalidOutput as exc:
        raise InvalidOutput(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"{what} are not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidOutput(f"{what} are not valid JSON: {str(exc)[:200] or type(exc).__name__}") from None
    _check_depth(raw, what)
    return raw


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidOutput(f"the key {key[:80]!r} appears twice in one object")
        found[key] = value
    return found


def _bounded_int(text: str) -> int:
    value = int(text) if len(text) <= 21 else None
    if value is None or not -2**63 <= value < 2**64:
        raise InvalidOutput(f"the integer {text[:30]}{'...' if len(text) > 30 else ''} does not fit in 64 bits")
    return value


def _check_depth(value: Any, what: str = "observations", depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise InvalidOutput(f"{what} are nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, what, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, what, depth + 1)


def _check_unique_checks(records: list[ProbeRecord]) -> None:
    """One record per check: with two, which one would be judged is not for the sandbox to decide."""
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        if record.check in seen:
            raise InvalidOutput(f"observations: records {seen[record.check]} and {index} both report check "
                                f"{record.check[:80]!r}")
        seen[record.check] = index


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``arrays.npz``, read member by member without pickle and within the caps.

    Every number that sizes something is checked before it is used: the file's own size, the
    size of the zip's directory (``zipfile`` reads all of it at once), the unpacked sizes the
    directory declares (a zip bomb declares small ones, and ``zipfile`` never unpacks past
    them), and each array's declared shape against the bytes its member holds (a forged header
    could otherwise make numpy allocate terabytes before it notices the data is short)."""
    fd = _open_regular(path, "the arrays file")
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_ARRAYS_BYTES:
            raise InvalidOutput(f"the arrays file ({path.name}) is {size:,} bytes, over the {MAX_ARRAYS_BYTES:,}-byte cap")
        _check_zip_directory(f, size)
        try:
            with zipfile.ZipFile(f) as archive:
                members = _npy_members(archive)
                return {key: _read_member(archive, info, key) for key, info in members.items()}
        except InvalidOutput:
            raise
        except Exception as exc:  # noqa: BLE001 - any unreadable archive is the sandbox's fault
            raise InvalidOutput(f"the arrays file ({path.name}) cannot be read as numpy arrays: "
                                f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _check_zip_directory(f: Any, size: int) -> None:
    """The zip's directory, as its end record describes it: classic (no ZIP64: numpy writes none
    for arrays under the cap) and at most ``MAX_ZIP_DIRECTORY_BYTES``."""
    tail_size = min(size, 22 + 65535)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise InvalidOutput("the arrays file is not a zip archive (no end-of-directory record)")
    entries, directory_bytes = struct.unpack("<xxxxxxxxxxHL", tail[at:at + 16])
    if tail.rfind(b"PK\x06\x07", 0, at) >= 0 or entries == 0xFFFF or directory_bytes == 0xFFFFFFFF:
        raise InvalidOutput("the arrays file is a ZIP64 archive, which numpy never writes for arrays this small")
    if entries > MAX_ARRAYS or directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
        raise InvalidOutput(f"the arrays file lists {entries:,} members in a {directory_bytes:,}-byte directory, "
                            f"over the caps of {MAX_ARRAYS:,} arrays and {MAX_ZIP_DIRECTORY_BYTES:,} bytes")
    f.seek(0)


def _npy_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by array key (``a0.npy`` holds ``a0``), each a ``.npy`` named once,
    unpacking to ``MAX_ARRAYS_BYTES`` in all."""
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in archive.infolist():
        if len(members) >= MAX_ARRAYS:
            raise InvalidOutput(f"the arrays file holds more than {MAX_ARRAYS:,} arrays")
        name = info.filename
        if not name.endswith(".npy") or info.is_dir():
            raise InvalidOutput(f"the arrays file holds {name[:80]!r}, which is not a .npy array")
        key = name[:-len(".npy")]
        if key in members:
            raise InvalidOutput(f"the arrays file holds {name[:80]!r} twice")
        total += info.file_size
        if total > MAX_ARRAYS_BYTES:
            raise InvalidOutput(f"arrays unpack to more than {total:,} bytes, over the {MAX_ARRAYS_BYTES:,}-byte cap")
        members[key] = info
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """One array, once its header is known to describe exactly the bytes that follow it."""
    where = f"array {key[:80]!r} of the arrays file"
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise InvalidOutput(f"{where} is in .npy format {version}, not 1.0 or 2.0")
        header_bytes = member.tell()
    if any(dim < 0 for dim in shape):
        raise InvalidOutput(f"{where} declares a negative dimension in its shape {shape}")
    if dtype.hasobject:
        raise InvalidOutput(f"{where} holds Python objects (dtype {dtype}), which only pickle could read")
    declared = math.prod(shape) * dtype.itemsize
    if declared != info.file_size - header_bytes:
        raise InvalidOutput(f"{where} declares shape {shape} of {dtype} ({declared:,} bytes) but holds "
                            f"{max(0, info.file_size - header_bytes):,} bytes")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


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


def rekeyed(records: list[ProbeRecord], arrays: dict[str, np.ndarray],
            prefix: str) -> tuple[list[ProbeRecord], dict[str, np.ndarray]]:
    """``records`` and their ``arrays`` with every array key prefixed, so that they can join
    another run's records without two arrays sharing a key."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {ARRAY_REF} and isinstance(value[ARRAY_REF], str):
                return {ARRAY_REF: prefix + value[ARRAY_REF]}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    renamed = [r.model_copy(update={"data": walk(r.data)}) if r.data is not None else r for r in records]
    return renamed, {prefix + key: array for key, array in arrays.items()}


def validate_data(model: type[BaseModel], data: dict[str, Any], arrays: dict[str, np.ndarray]) -> BaseModel:
    """Validate one record's data against its kind's ``Observation`` model (strict, closed)."""
    try:
        return model.model_validate(decode(data, arrays))
    except ValidationError as exc:
        raise InvalidOutput(f"{first_error(exc)}") from None


def first_error(exc: ValidationError) -> str:
    """The first problem pydantic found, at its place (``records.0.check: ...``), and how many more."""
    err = exc.errors()[0]
    loc = ".".join(str(p)[:80] for p in err["loc"])  # a key the sandbox made up can be megabytes long
    extra = f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{loc or 'document'}: {err['msg']}{extra}"


# ---------------------------------------------------------------- kept on the host

def store(folder: Path, value: BaseModel) -> None:
    """Keep ``value`` (an observation or measurement the host validated) in ``folder``, in this
    module's format: written into a folder of its own beside it, then renamed into place, so a
    reader never sees half of it and two writers of the same value do not mix their files. A
    folder that already exists is left as it is (it holds the same value)."""
    writer = ArrayWriter()
    record = {"check": folder.name, "status": "observed", "data": writer.encode(value.model_dump(mode="python"))}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write(tmp, [record], writer)
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would travel into a student kit
        if not folder.exists():
            tmp.rename(folder)
    except OSError:
        if not folder.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stored(folder: Path, model: type[BaseModel]) -> BaseModel | None:
    """What ``store`` kept in ``folder``, validated against ``model`` as a sandbox's record is;
    None when there is none or it is unreadable (a cache that cannot be read only costs time)."""
    try:
        doc, arrays = load(folder)
        return validate_data(model, doc.records[0].data or {}, arrays)
    except (FileNotFoundError, IndexError, InvalidOutput, OSError):
        return None
