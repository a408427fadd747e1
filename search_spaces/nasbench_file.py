"""NAS-Bench-101 data files, read and written without TensorFlow.

The benchmark ships its results as `nasbench_only108.tfrecord` (about 499 MB, 108-epoch results) and
`nasbench_full.tfrecord` (4, 12, 36 and 108 epochs). Neither can be downloaded on these machines, so
the reader is tested on small files the writer makes in exactly the same format:

* TFRecord framing: each record is a little-endian uint64 length, the uint32 masked CRC32C of those
  8 bytes, the data, and the uint32 masked CRC32C of the data; records are concatenated.
* Each record's data is UTF-8 JSON `[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]`:
  the adjacency a row-major string of '0'/'1' of length V*V, the operations comma-separated, the
  metrics a base64 serialized `nasbench.ModelMetrics` protobuf (proto2), decoded here by hand.

One record is one training run: a cell appears once per repeat (three at each epoch budget).
`read_table` keeps, for one epoch budget, what the benchmark's `query` returns at the end of
training: validation and test accuracy and training time of every repeat, and the parameter count.

CRCs are checked for every record, in numpy across thousands of records at once (one step per byte
position), so checking the real file costs seconds; `check_crc=False` skips it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import mmap
import os
import struct
from typing import Iterable, Iterator, Sequence

import numpy as np

from evolve.errors import OptionError

HEADER = 12  # uint64 length + uint32 masked CRC of the length
FOOTER = 4  # uint32 masked CRC of the data
MASK_DELTA = 0xA282EAD8
CRC_CHUNK = 1 << 15  # records whose CRCs are computed together


class NasBenchFileError(OptionError):
    """A NAS-Bench-101 data file that is missing, truncated or corrupt: the message names the file
    and, where one is at fault, the record."""


# ---------------------------------------------------------------------------- CRC32C


def _crc32c_table() -> np.ndarray:
    """The byte table of CRC32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_TABLE = _crc32c_table()


def crc32c_segments(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC32C of each segment `buffer[start:start+length]` (buffer: uint8), as uint32.

    The segments are processed together, one byte position at a time, so the Python loop runs once
    per byte of the longest segment of a chunk instead of once per byte of the file."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32)
    last = max(len(buffer) - 1, 0)
    for lo in range(0, len(starts), CRC_CHUNK):
        s, n = starts[lo : lo + CRC_CHUNK], lengths[lo : lo + CRC_CHUNK]
        crc = np.full(len(s), 0xFFFFFFFF, dtype=np.uint32)
        for j in range(int(n.max())):
            byte = buffer[np.minimum(s + j, last)]
            stepped = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
            crc = np.where(n > j, stepped, crc)
        out[lo : lo + CRC_CHUNK] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def crc32c(data: bytes) -> int:
    """CRC32C of one byte string."""
    return int(crc32c_segments(np.frombuffer(data, dtype=np.uint8), [0], [len(data)])[0])


def masked(crc: np.ndarray | int) -> np.ndarray | int:
    """TFRecord's masked CRC: rotated right by 15 bits plus a constant, modulo 2**32."""
    crc = np.asarray(crc, dtype=np.uint64)
    rotated = ((crc >> np.uint64(15)) | (crc << np.uint64(17))) & np.uint64(0xFFFFFFFF)
    result = ((rotated + np.uint64(MASK_DELTA)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return int(result) if result.ndim == 0 else result


# ---------------------------------------------------------------------------- TFRecord framing


def write_tfrecord(path: str | os.PathLike, payloads: Sequence[bytes]) -> None:
    """Write `payloads` as one TFRecord file (the framing TensorFlow's writer produces)."""
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    headers = b"".join(struct.pack("<Q", n) for n in lengths)
    header_crcs = masked(_segment_crcs(headers, np.arange(len(payloads)) * 8, np.full(len(payloads), 8)))
    body = b"".join(payloads)
    body_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(payloads) else lengths
    body_crcs = masked(_segment_crcs(body, body_starts, lengths))
    with open(path, "wb") as f:
        for k, payload in enumerate(payloads):
            f.write(headers[8 * k : 8 * k + 8])
            f.write(struct.pack("<I", int(header_crcs[k])))
            f.write(payload)
            f.write(struct.pack("<I", int(body_crcs[k])))


def _segment_crcs(data: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return crc32c_segments(np.frombuffer(data, dtype=np.uint8), starts, lengths) if len(starts) else np.empty(0, np.uint32)


@dataclasses.dataclass(frozen=True)
class Frames:
    """Where the records of a TFRecord buffer are: each record's data offset and length."""

    starts: np.ndarray
    lengths: np.ndarray


def find_frames(buffer: bytes | mmap.mmap, path: str) -> Frames:
    """Walk the framing of a whole file; a record cut short names the record and its offset."""
    starts: list[int] = []
    lengths: list[int] = []
    size = len(buffer)
    offset = 0
    unpack_length = struct.Struct("<Q").unpack_from
    while offset < size:
        record = len(starts)
        if size - offset < HEADER:
            raise _error(path, record, offset, f"truncated: {size - offset} bytes left, a record header needs {HEADER}")
        (length,) = unpack_length(buffer, offset)
        end = offset + HEADER + length + FOOTER
        if end > size:
            if not _length_checks_out(buffer, offset):
                # a header that fails its own CRC: a corrupt file, or none of TFRecord's at all
                kind = "not a TFRecord file" if record == 0 else "corrupt"
                raise _error(path, record, offset, f"{kind}: bad CRC of the record's length")
            raise _error(path, record, offset, f"truncated: the record says {length} bytes of data, the file ends first")
        starts.append(offset + HEADER)
        lengths.append(length)
        offset = end
    return Frames(np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64))


def _length_checks_out(buffer: bytes | mmap.mmap, offset: int) -> bool:
    """Whether the record header at `offset` holds the masked CRC of its length."""
    head = np.frombuffer(buffer, dtype=np.uint8, count=HEADER, offset=offset)
    stored = int(_gather_uint32(head, np.array([8]))[0])
    return stored == int(masked(crc32c_segments(head, np.array([0]), np.array([8])))[0])


def check_crcs(buffer: np.ndarray, frames: Frames, path: str) -> None:
    """Check both masked CRCs of every record; the first bad one names its record."""
    if not len(frames.starts):
        return
    heads = frames.starts - HEADER
    stored_head = _gather_uint32(buffer, frames.starts - FOOTER)
    stored_data = _gather_uint32(buffer, frames.starts + frames.lengths)
    for what, stored, computed in (
        ("length", stored_head, masked(crc32c_segments(buffer, heads, np.full(len(heads), 8)))),
        ("data", stored_data, masked(crc32c_segments(buffer, frames.starts, frames.lengths))),
    ):
        bad = np.flatnonzero(stored != computed)
        if len(bad):
            k = int(bad[0])
            raise _error(path, k, int(heads[k]), f"bad CRC of the {what} (stored {int(stored[k]):#010x}, computed {int(computed[k]):#010x})")


def _gather_uint32(buffer: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The little-endian uint32 at each offset."""
    b = [buffer[offsets + i].astype(np.uint32) for i in range(4)]
    return b[0] | (b[1] << np.uint32(8)) | (b[2] << np.uint32(16)) | (b[3] << np.uint32(24))


# ---------------------------------------------------------------------------- ModelMetrics protobuf


@dataclasses.dataclass(frozen=True)
class EvaluationData:
    """`nasbench.EvaluationData`: the metrics at one point of training."""

    current_epoch: float = 0.0
    training_time: float = 0.0
    train_accuracy: float = 0.0
    validation_accuracy: float = 0.0
    test_accuracy: float = 0.0
    checkpoint_path: str = ""


@dataclasses.dataclass(frozen=True)
class ModelMetrics:
    """`nasbench.ModelMetrics`: evaluation_data[0] at the start, [1] halfway, [2] at the end of training."""

    evaluation_data: tuple[EvaluationData, ...] = ()
    trainable_parameters: int = 0
    total_time: float = 0.0


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


_EVALUATION_DOUBLES = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy", 5: "test_accuracy"}
_DOUBLE = struct.Struct("<d")


def encode_metrics(metrics: ModelMetrics) -> bytes:
    """Serialize as protobuf (proto2 wire format, fields in number order, as protoc's encoders do)."""
    out = bytearray()
    for evaluation in metrics.evaluation_data:
        body = bytearray()
        for number, name in _EVALUATION_DOUBLES.items():
            body += _tag(number, 1) + _DOUBLE.pack(getattr(evaluation, name))
        if evaluation.checkpoint_path:
            path = evaluation.checkpoint_path.encode()
            body += _tag(6, 2) + _varint(len(path)) + path
        out += _tag(1, 2) + _varint(len(body)) + body
    out += _tag(2, 0) + _varint(metrics.trainable_parameters & 0xFFFFFFFFFFFFFFFF)  # int32: negative sign-extended
    out += _tag(3, 1) + _DOUBLE.pack(metrics.total_time)
    return bytes(out)


def decode_metrics(data: bytes) -> ModelMetrics:
    """Parse a serialized ModelMetrics; unknown fields are skipped, malformed bytes raise WireError."""
    evaluations, parameters, total_time = _split_metrics(data)
    return ModelMetrics(tuple(map(decode_evaluation, evaluations)), parameters, total_time)


def _split_metrics(data: bytes) -> tuple[list[bytes], int, float]:
    """A ModelMetrics' evaluations still serialized (a reader may decode only the one it needs), its
    parameter count and total time."""
    evaluations = []
    parameters = 0
    total_time = 0.0
    for number, wire, start, end in _fields(data):
        if number == 1 and wire == 2:
            evaluations.append(data[start:end])
        elif number == 2 and wire == 0:
            parameters = _int32(_read_varint(data, start)[0])
        elif number == 3 and wire == 1:
            total_time = _DOUBLE.unpack_from(data, start)[0]
    return evaluations, parameters, total_time


def decode_evaluation(data: bytes) -> EvaluationData:
    """Parse a serialized EvaluationData (WireError if malformed)."""
    values = {}
    for number, wire, start, end in _fields(data):
        if wire == 1 and number in _EVALUATION_DOUBLES:
            values[_EVALUATION_DOUBLES[number]] = _DOUBLE.unpack_from(data, start)[0]
        elif number == 6 and wire == 2:
            try:
                values["checkpoint_path"] = data[start:end].decode()
            except UnicodeDecodeError:
                raise WireError("checkpoint_path is not UTF-8") from None
    return EvaluationData(**values)


def _fields(data: bytes) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each field's value in `data` (a varint's bytes, a
    fixed-width value's bytes, or a length-delimited field's payload)."""
    fields = []
    pos, size = 0, len(data)
    while pos < size:
        key = data[pos]
        if key < 0x80:  # every tag of ModelMetrics fits one byte: the common case, inlined
            pos += 1
        else:
            key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire == 1:
            start, pos = pos, pos + 8
        elif wire == 2:
            length, start = _read_varint(data, pos)
            pos = start + length
        elif wire == 0:
            start, pos = pos, _read_varint(data, pos)[1]
        elif wire == 5:
            start, pos = pos, pos + 4
        else:
            raise WireError(f"field {number} has wire type {wire}, which ModelMetrics does not use")
        if pos > size:
            raise WireError(f"field {number} runs past the end")
        fields.append((number, wire, start, pos))
    return fields


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("a varint runs past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("a varint longer than 10 bytes")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# ---------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class Record:
    """One training run of one cell, as one record of the file."""

    module_hash: str
    epochs: int
    adjacency: tuple[tuple[int, ...], ...]
    operations: tuple[str, ...]
    metrics: ModelMetrics

    def payload(self) -> bytes:
        raw_adjacency = "".join(str(int(bit)) for row in self.adjacency for bit in row)
        raw_metrics = base64.b64encode(encode_metrics(self.metrics)).decode()
        return json.dumps([self.module_hash, self.epochs, raw_adjacency, ",".join(self.operations), raw_metrics]).encode()


def write_file(path: str | os.PathLike, records: Iterable[Record]) -> None:
    """Write records as a NAS-Bench-101 data file."""
    write_tfrecord(path, [r.payload() for r in records])


def parse_record(data: bytes) -> Record:
    """One record's data; ValueError (WireError for the protobuf) says what is wrong with it."""
    module_hash, epochs, raw_adjacency, raw_operations, metrics = _parse_fields(data)
    dim = math.isqrt(len(raw_adjacency))
    bits = [int(c) for c in raw_adjacency]
    adjacency = tuple(tuple(bits[i * dim : (i + 1) * dim]) for i in range(dim))
    return Record(module_hash, epochs, adjacency, tuple(raw_operations.split(",")), metrics)


def _parse_fields(data: bytes, decode_all: bool = True) -> tuple[str, int, str, str, ModelMetrics]:
    """The record's five fields, checked, with the metrics decoded (all evaluations, or only the
    final one) and the spelling left raw."""
    try:
        fields = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not UTF-8 JSON ({e})") from None
    kinds = (str, int, str, str, str)
    if not (isinstance(fields, list) and len(fields) == 5 and all(isinstance(v, k) for v, k in zip(fields, kinds))):
        raise ValueError("not a list of 5 fields [module_hash, epochs, adjacency, operations, metrics] (str, int, str, str, str)")
    module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = fields
    dim = math.isqrt(len(raw_adjacency))
    if dim * dim != len(raw_adjacency) or set(raw_adjacency) - {"0", "1"}:
        raise ValueError(f"the adjacency {raw_adjacency!r} is not a square matrix of 0 and 1")
    if raw_operations.count(",") != dim - 1:
        raise ValueError(f"{raw_operations.count(',') + 1} operations for a {dim}x{dim} adjacency")
    try:
        blob = base64.b64decode(raw_metrics, validate=True)
    except binascii.Error as e:
        raise ValueError(f"the metrics are not base64 ({e})") from None
    try:
        metrics = decode_metrics(blob) if decode_all else _final_only(blob)
    except WireError as e:
        raise ValueError(f"the metrics are not a ModelMetrics protobuf ({e})") from None
    return module_hash, epochs, raw_adjacency, raw_operations, metrics


def _final_only(blob: bytes) -> ModelMetrics:
    """A ModelMetrics whose evaluations other than the end of training (the third) are left empty:
    what a table needs, at a third of the decoding."""
    evaluations, parameters, total_time = _split_metrics(blob)
    decoded = [EvaluationData()] * len(evaluations)
    if len(decoded) >= 3:
        decoded[2] = decode_evaluation(evaluations[2])
    return ModelMetrics(tuple(decoded), parameters, total_time)


def read_records(path: str | os.PathLike, check_crc: bool = True) -> Iterator[Record]:
    """Every record of a data file, in order (checked, parsed); any fault is one NasBenchFileError."""
    for k, offset, data in _checked_payloads(path, check_crc):
        try:
            yield parse_record(data)
        except ValueError as e:
            raise _error(os.fspath(path), k, offset, str(e)) from None


def _checked_payloads(path: str | os.PathLike, check_crc: bool) -> Iterator[tuple[int, int, bytes]]:
    """(record number, byte offset, data) of every record, after the framing (and CRCs) are checked."""
    path = os.fspath(path)
    with _mapped(path) as buffer:
        frames = find_frames(buffer, path)
        if check_crc:
            check_crcs(np.frombuffer(buffer, dtype=np.uint8), frames, path)
        for k, (start, length) in enumerate(zip(frames.starts.tolist(), frames.lengths.tolist())):
            yield k, start - HEADER, buffer[start : start + length]


class _mapped:
    """The file's bytes, memory-mapped (an empty file is an empty buffer); a missing file is one line."""

    def __init__(self, path: str):
        self.path = path
        self._file = self._map = None

    def __enter__(self) -> bytes | mmap.mmap:
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise NasBenchFileError(f"NAS-Bench-101 data file {self.path}: cannot be read ({e.strerror})") from None
        if os.fstat(self._file.fileno()).st_size == 0:
            return b""
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def __exit__(self, *exc) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a numpy view still points into it; the mapping ends with it
                pass
        self._file.close()


def _error(path: str, record: int, offset: int, what: str) -> NasBenchFileError:
    return NasBenchFileError(f"NAS-Bench-101 data file {path}: record {record} (byte {offset}): {what}")


# ---------------------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class Cell:
    """What the file says about one cell at one epoch budget: its spelling in the file, its
    parameter count, and per repeat the final validation and test accuracy and training seconds."""

    module_hash: str
    adjacency: tuple[tuple[int, ...], ...]
    operations: tuple[str, ...]
    trainable_parameters: int
    validation_accuracy: tuple[float, ...]
    test_accuracy: tuple[float, ...]
    training_time: tuple[float, ...]

    @property
    def repeats(self) -> int:
        return len(self.validation_accuracy)


@dataclasses.dataclass(frozen=True)
class Table:
    """The cells of a data file at one epoch budget, by module hash.

    Stored as columns (the real file has 423,624 cells: a Python object per cell and per repeat
    would cost hundreds of MB in every evaluating process); `get` builds one cell's view.
    Accuracies and times are [cells, most repeats], NaN where a cell has fewer repeats."""

    path: str
    epochs: int
    index: dict[str, int]
    adjacency: list[str]
    operations: list[str]
    trainable_parameters: np.ndarray
    validation_accuracy: np.ndarray
    test_accuracy: np.ndarray
    training_time: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, module_hash: str) -> bool:
        return module_hash in self.index

    def get(self, module_hash: str) -> Cell | None:
        row = self.index.get(module_hash)
        if row is None:
            return None
        raw = self.adjacency[row]
        dim = math.isqrt(len(raw))
        present = ~np.isnan(self.validation_accuracy[row])
        return Cell(
            module_hash,
            tuple(tuple(int(c) for c in raw[i * dim : (i + 1) * dim]) for i in range(dim)),
            tuple(self.operations[row].split(",")),
            int(self.trainable_parameters[row]),
            tuple(self.validation_accuracy[row][present].tolist()),
            tuple(self.test_accuracy[row][present].tolist()),
            tuple(self.training_time[row][present].tolist()),
        )


def read_table(path: str | os.PathLike, epochs: int = 108, check_crc: bool = True) -> Table:
    """The file's cells trained for `epochs` epochs, with the end-of-training metrics of each repeat
    (what the benchmark's `query` returns). A file with none is an error naming the budgets it has."""
    path = os.fspath(path)
    index: dict[str, int] = {}
    adjacency: list[str] = []
    operations: list[str] = []
    parameters: list[int] = []
    finals: list[list[tuple[float, float, float]]] = []
    seen_epochs: set[int] = set()
    for k, offset, data in _checked_payloads(path, check_crc):
        try:
            module_hash, record_epochs, raw_adjacency, raw_operations, metrics = _parse_fields(data, decode_all=False)
        except ValueError as e:
            raise _error(path, k, offset, str(e)) from None
        seen_epochs.add(record_epochs)
        if record_epochs != epochs:
            continue
        if len(metrics.evaluation_data) < 3:
            raise _error(path, k, offset, f"{len(metrics.evaluation_data)} evaluations; the benchmark stores 3 (start, halfway, end)")
        row = index.setdefault(module_hash, len(index))
        if row == len(adjacency):
            adjacency.append(raw_adjacency)
            operations.append(raw_operations)
            parameters.append(metrics.trainable_parameters)
            finals.append([])
        final = metrics.evaluation_data[2]
        finals[row].append((final.validation_accuracy, final.test_accuracy, final.training_time))
    if not index:
        has = f"its budgets are {sorted(seen_epochs)} epochs" if seen_epochs else "it holds no records"
        raise NasBenchFileError(f"NAS-Bench-101 data file {path}: no cell trained for {epochs} epochs; {has}")
    columns = np.full((len(index), max(map(len, finals)), 3), np.nan)
    for row, repeats in enumerate(finals):
        columns[row, : len(repeats)] = repeats
    return Table(
        path, epochs, index, adjacency, operations, np.array(parameters, dtype=np.int64),
        columns[..., 0], columns[..., 1], columns[..., 2],
    )
