"""NAS-Bench-101 data files: CRC32C, the protobuf, the TFRecord framing, and clear errors for bad files."""

import base64
import json
import struct

import numpy as np
import pytest

from evolve.errors import EvolveError
from evolve.search_spaces import nasbench_file as nf

INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
INCEPTION_ADJ = (
    (0, 1, 1, 1, 1, 0, 0),
    (0, 0, 0, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, 1, 0),
    (0, 0, 0, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, 0, 0),
)
INCEPTION_OPS = ("input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "output")


def metrics(validation: float, test: float, seconds: float, params: int = 2694282) -> nf.ModelMetrics:
    return nf.ModelMetrics(
        (
            nf.EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1),
            nf.EvaluationData(54.0, seconds / 2, 0.9, validation - 0.05, test - 0.05),
            nf.EvaluationData(108.0, seconds, 1.0, validation, test, "/ckpt/model.ckpt-42"),
        ),
        params,
        seconds * 1.1,
    )


def inception_records(epochs: int = 108) -> list[nf.Record]:
    # the first repeat is the notebook's printed query of the Inception-like cell
    runs = [(0.9376001358032227, 0.9311898946762085, 1155.85302734375), (0.93, 0.925, 1150.0), (0.94, 0.935, 1160.0)]
    return [nf.Record(INCEPTION_HASH, epochs, INCEPTION_ADJ, INCEPTION_OPS, metrics(*run)) for run in runs]


@pytest.mark.parametrize(
    "data, crc",  # RFC 3720 B.4 test vectors, and the usual check value
    [(b"123456789", 0xE3069283), (bytes(32), 0x8A9136AA), (b"\xff" * 32, 0x62A8AB43), (bytes(range(32)), 0x46DD794E)],
)
def test_crc32c_known_values(data, crc):
    assert nf.crc32c(data) == crc


def test_crc32c_of_many_segments_at_once_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 5000, dtype=np.uint8)
    starts = rng.integers(0, 4000, 60)
    lengths = rng.integers(0, 400, 60)
    together = nf.crc32c_segments(data, starts, lengths)
    assert [int(c) for c in together] == [nf.crc32c(data[s : s + n].tobytes()) for s, n in zip(starts, lengths)]


def test_masked_crc_formula():
    crc = 0x12345678
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert nf.masked(crc) == (rotated + 0xA282EAD8) & 0xFFFFFFFF


def test_metrics_round_trip_and_match_the_protobuf_library():
    m = metrics(0.9376001358032227, 0.9311898946762085, 1155.85302734375)
    blob = nf.encode_metrics(m)
    assert nf.decode_metrics(blob) == m
    pool_module = pytest.importorskip("google.protobuf.descriptor_pool")
    from google.protobuf import descriptor_pb2, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="model_metrics.proto", package="nasbench", syntax="proto2")
    evaluation = proto.message_type.add(name="EvaluationData")
    for number, name in enumerate(["current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"], 1):
        evaluation.field.add(name=name, number=number, type=1, label=1)  # optional double
    evaluation.field.add(name="checkpoint_path", number=6, type=9, label=1)  # optional string
    model = proto.message_type.add(name="ModelMetrics")
    model.field.add(name="evaluation_data", number=1, type=11, label=3, type_name=".nasbench.EvaluationData")
    model.field.add(name="trainable_parameters", number=2, type=5, label=1)  # optional int32
    model.field.add(name="total_time", number=3, type=1, label=1)
    pool = pool_module.DescriptorPool()
    pool.Add(proto)
    ModelMetrics = message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))
    parsed = ModelMetrics.FromString(blob)
    assert parsed.trainable_parameters == 2694282
    assert parsed.evaluation_data[2].validation_accuracy == 0.9376001358032227
    assert parsed.evaluation_data[2].checkpoint_path == "/ckpt/model.ckpt-42"
    assert parsed.SerializeToString() == blob  # byte for byte what protoc's encoder writes
    other = ModelMetrics(trainable_parameters=-3, total_time=2.5)  # negative int32, no evaluations
    other.evaluation_data.add(test_accuracy=0.5)
    assert nf.decode_metrics(other.SerializeToString()) == nf.ModelMetrics((nf.EvaluationData(test_accuracy=0.5),), -3, 2.5)


def test_decoder_skips_unknown_fields_and_refuses_malformed_bytes():
    blob = nf.encode_metrics(metrics(0.9, 0.9, 100.0))
    unknown = bytes([9 << 3 | 0, 5, 10 << 3 | 5, 1, 2, 3, 4])  # varint field 9, fixed32 field 10
    assert nf.decode_metrics(blob + unknown) == nf.decode_metrics(blob)
    for bad in (blob[:-3], bytes([1 << 3 | 2, 50, 1]), bytes([2 << 3 | 0]) + b"\xff" * 11, bytes([1 << 3 | 3])):
        with pytest.raises(nf.WireError):
            nf.decode_metrics(bad)


def test_written_file_has_tfrecord_framing(tmp_path):
    path = tmp_path / "one.tfrecord"
    record = inception_records()[0]
    nf.write_file(path, [record])
    raw = path.read_bytes()
    payload = record.payload()
    (length,) = struct.unpack("<Q", raw[:8])
    assert length == len(payload) and raw[12 : 12 + length] == payload and len(raw) == 16 + length
    assert struct.unpack("<I", raw[8:12])[0] == nf.masked(nf.crc32c(raw[:8]))
    assert struct.unpack("<I", raw[-4:])[0] == nf.masked(nf.crc32c(payload))
    fields = json.loads(payload)
    assert fields[:4] == [INCEPTION_HASH, 108, "".join(str(b) for row in INCEPTION_ADJ for b in row), ",".join(INCEPTION_OPS)]
    assert nf.decode_metrics(base64.b64decode(fields[4])) == record.metrics


def test_records_and_table_read_back(tmp_path):
    path = tmp_path / "nb.tfrecord"
    chain = nf.Record("b3bc0991ac661443a583796ce582f11f", 108, ((0, 1, 0), (0, 0, 1), (0, 0, 0)), ("input", "conv3x3-bn-relu", "output"), metrics(0.8, 0.79, 300.0, 1000))
    records = inception_records(4) + inception_records() + [chain]
    nf.write_file(path, records)
    assert list(nf.read_records(path)) == records
    table = nf.read_table(path)
    assert len(table) == 2 and INCEPTION_HASH in table and "nope" not in table
    cell = table.get(INCEPTION_HASH)
    assert cell.adjacency == INCEPTION_ADJ and cell.operations == INCEPTION_OPS and cell.trainable_parameters == 2694282
    assert cell.validation_accuracy == (0.9376001358032227, 0.93, 0.94)
    assert cell.test_accuracy == (0.9311898946762085, 0.925, 0.935)
    assert cell.training_time == (1155.85302734375, 1150.0, 1160.0)
    assert table.get(chain.module_hash).repeats == 1
    assert nf.read_table(path, epochs=4).get(INCEPTION_HASH).repeats == 3
    with pytest.raises(nf.NasBenchFileError, match=r"no cell trained for 12 epochs; its budgets are \[4, 108\]"):
        nf.read_table(path, epochs=12)


def corrupt(tmp_path, change) -> str:
    path = tmp_path / f"bad{len(list(tmp_path.iterdir()))}.tfrecord"
    nf.write_file(path, inception_records())
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(change(raw)))
    return str(path)


def record_offset(k: int) -> int:
    return sum(len(r.payload()) + 16 for r in inception_records()[:k])


def test_every_bad_file_is_one_clear_error_naming_file_and_record(tmp_path):
    second = record_offset(1)

    def flip(offset):
        def change(raw):
            raw[offset] ^= 0x01
            return raw

        return change

    cases = {
        "missing": (str(tmp_path / "absent.tfrecord"), r"absent\.tfrecord: cannot be read \(No such file"),
        "truncated data": (corrupt(tmp_path, lambda raw: raw[:-7]), r"record 2 \(byte \d+\): truncated: the record says"),
        "truncated header": (corrupt(tmp_path, lambda raw: raw + b"\x01\x02"), r"record 3 \(byte \d+\): truncated: 2 bytes left"),
        "length crc": (corrupt(tmp_path, flip(second + 9)), rf"record 1 \(byte {second}\): bad CRC of the length"),
        "data crc": (corrupt(tmp_path, flip(second + 20)), rf"record 1 \(byte {second}\): bad CRC of the data"),
        "empty": (corrupt(tmp_path, lambda raw: b""), r"no cell trained for 108 epochs; it holds no records"),
        "another format": (corrupt(tmp_path, lambda raw: b"root:x:0:0:root:/root:/bin/bash\n" * 3),
                           r"record 0 \(byte 0\): not a TFRecord file: bad CRC of the record's length"),
        "length made huge": (corrupt(tmp_path, flip(second + 6)), rf"record 1 \(byte {second}\): corrupt: bad CRC of the record's length"),
    }
    for name, (path, message) in cases.items():
        with pytest.raises(EvolveError, match=message) as info:
            nf.read_table(path)
        assert path in str(info.value) and "\n" not in str(info.value), name


def test_bad_payloads_are_named_even_without_crc_checks(tmp_path):
    good = inception_records()[0]
    blob = base64.b64encode(nf.encode_metrics(good.metrics)).decode()
    raw_adj = "".join(str(b) for row in INCEPTION_ADJ for b in row)
    payloads = {
        "not UTF-8 JSON": b"{oops",
        "not a list of 5": json.dumps([INCEPTION_HASH, 108]).encode(),
        "not base64": json.dumps([INCEPTION_HASH, 108, raw_adj, ",".join(INCEPTION_OPS), "@@@"]).encode(),
        "not a ModelMetrics": json.dumps([INCEPTION_HASH, 108, raw_adj, ",".join(INCEPTION_OPS), base64.b64encode(b"\x0a\x40").decode()]).encode(),
        "is not a square matrix": json.dumps([INCEPTION_HASH, 108, "01010", "input", blob]).encode(),
        "operations for": json.dumps([INCEPTION_HASH, 108, raw_adj, "input,output", blob]).encode(),
    }
    for what, payload in payloads.items():
        path = tmp_path / "payload.tfrecord"
        nf.write_tfrecord(path, [good.payload(), payload])
        for check_crc in (True, False):
            with pytest.raises(nf.NasBenchFileError, match=rf"payload\.tfrecord: record 1 \(byte \d+\): .*{what}"):
                nf.read_table(path, check_crc=check_crc)


def test_fewer_than_three_evaluations_is_an_error(tmp_path):
    path = tmp_path / "short.tfrecord"
    record = nf.Record(INCEPTION_HASH, 108, INCEPTION_ADJ, INCEPTION_OPS, nf.ModelMetrics((nf.EvaluationData(),), 5, 1.0))
    nf.write_file(path, [record])
    with pytest.raises(nf.NasBenchFileError, match=r"record 0 \(byte 0\): 1 evaluations; the benchmark stores 3"):
        nf.read_table(path)
