"""grader.observations: the sandbox/host boundary (plain JSON + numpy arrays, validated strictly)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader import observations as obs
from grader.checks.answer import AnswerObservation
from grader.checks.param_count import ParamCountObservation
from grader.checks.shape import Forward, ShapeObservation
from grader.observations import InvalidOutput


def observed(check: str, data: dict, **extra) -> dict:
    return {"check": check, "status": "observed", "data": data, **extra}


def write_doc(out: Path, doc: object) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / obs.JSON_NAME).write_text(json.dumps(doc))
    return out


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


# ---------------------------------------------------------------- round trip


def test_round_trip_with_arrays(out):
    writer = obs.ArrayWriter()
    shape = ShapeObservation(forwards=[Forward(input_shape=[3, 4], output_type="torch.Tensor", output_shape=[3, 2])])
    answer = AnswerObservation(type="torch.Tensor", array=np.arange(6, dtype=np.float64).reshape(2, 3))
    records = [
        observed("shape", writer.encode(shape.model_dump(mode="python")), found_as="net", found_how="alias",
                 seconds=0.25),
        observed("answer", writer.encode(answer.model_dump(mode="python"))),
        {"check": "boom", "status": "raised", "error": {"type": "ZeroDivisionError", "message": "division by zero",
                                                        "during": "calling fc(1)", "traceback": "Traceback ..."}},
        {"check": "gone", "status": "unresolved", "unresolved": {"target": "fc", "looked_for": "fc",
                                                                "problem": "missing", "candidates": ["g(x)"]}},
    ]
    obs.write(out, records, writer)

    doc, arrays = obs.load(out)
    assert doc.format == 1
    assert [r.check for r in doc.records] == ["shape", "answer", "boom", "gone"]
    assert [r.status for r in doc.records] == ["observed", "observed", "raised", "unresolved"]
    assert doc.records[0].found_as == "net" and doc.records[0].seconds == 0.25
    assert doc.records[2].error.during == "calling fc(1)"
    assert doc.records[3].unresolved.candidates == ["g(x)"]

    assert obs.validate_data(ShapeObservation, doc.records[0].data, arrays) == shape
    back = obs.validate_data(AnswerObservation, doc.records[1].data, arrays)
    assert type(back.array) is np.ndarray
    np.testing.assert_array_equal(back.array, answer.array)
    assert back.array.dtype == np.float64


def test_writer_encodes_nested_arrays_as_references():
    writer = obs.ArrayWriter()
    encoded = writer.encode({"a": [np.zeros(2), (1, np.ones(3))], 5: "x"})
    assert encoded == {"a": [{"$array": "a0"}, [1, {"$array": "a1"}]], "5": "x"}
    assert list(writer.arrays) == ["a0", "a1"]


def test_nan_survives_the_round_trip(out):
    obs.write(out, [observed("a", {"type": "float", "number": float("nan")})], obs.ArrayWriter())
    doc, arrays = obs.load(out)
    value = obs.validate_data(AnswerObservation, doc.records[0].data, arrays)
    assert np.isnan(value.number)


def test_no_output_is_file_not_found(out):
    out.mkdir()
    with pytest.raises(FileNotFoundError):
        obs.load(out)


def test_missing_arrays_file_means_no_arrays(out):
    write_doc(out, {"format": 1, "records": []})
    assert obs.load(out)[1] == {}


# ---------------------------------------------------------------- load() rejects


def test_oversize_json_is_rejected(out):
    out.mkdir()
    (out / obs.JSON_NAME).write_text(" " * (obs.MAX_JSON_BYTES + 1))
    with pytest.raises(InvalidOutput, match=f"over the {obs.MAX_JSON_BYTES:,}-byte cap"):
        obs.load(out)


def test_invalid_json_is_rejected(out):
    out.mkdir()
    (out / obs.JSON_NAME).write_text('{"format": 1, "records": [')
    with pytest.raises(InvalidOutput, match="not valid JSON"):
        obs.load(out)


def test_too_deep_nesting_is_rejected(out):
    deep: object = 1
    for _ in range(obs.MAX_DEPTH + 5):
        deep = [deep]
    write_doc(out, {"format": 1, "records": [observed("a", {"x": deep})]})
    with pytest.raises(InvalidOutput, match=f"nested deeper than {obs.MAX_DEPTH} levels"):
        obs.load(out)


def test_nesting_deep_enough_to_break_the_json_parser_is_rejected(out):
    out.mkdir()
    (out / obs.JSON_NAME).write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InvalidOutput):
        obs.load(out)


def test_score_key_in_a_record_is_rejected(out):
    write_doc(out, {"format": 1, "records": [observed("a", {}, score=100)]})
    with pytest.raises(InvalidOutput, match=r"records\.0\.score: Extra inputs are not permitted"):
        obs.load(out)


def test_unknown_top_level_key_is_rejected(out):
    write_doc(out, {"format": 1, "records": [], "grade": "A"})
    with pytest.raises(InvalidOutput, match="grade: Extra inputs are not permitted"):
        obs.load(out)


@pytest.mark.parametrize("record, where", [
    ({"check": 3, "status": "observed"}, "records.0.check"),
    ({"check": "a", "status": "passed"}, "records.0.status"),
    ({"check": "a", "status": "observed", "seconds": "1.5"}, "records.0.seconds"),
    ({"check": "a", "status": "observed", "data": [1, 2]}, "records.0.data"),
    ({"check": "a", "status": "raised", "error": {"type": "E", "message": "m", "during": "d"}}, "records.0.error.traceback"),
], ids=["check-int", "status-passed", "seconds-str", "data-list", "error-incomplete"])
def test_wrong_types_are_rejected_strictly(out, record, where):
    write_doc(out, {"format": 1, "records": [record]})
    with pytest.raises(InvalidOutput) as info:
        obs.load(out)
    assert where in str(info.value)


def test_other_format_is_rejected(out):
    write_doc(out, {"format": 2, "records": []})
    with pytest.raises(InvalidOutput, match="format"):
        obs.load(out)


def test_symlinked_observations_json_is_rejected(out, tmp_path):
    elsewhere = write_doc(tmp_path / "elsewhere", {"format": 1, "records": [observed("a", {})]})
    out.mkdir()
    (out / obs.JSON_NAME).symlink_to(elsewhere / obs.JSON_NAME)
    with pytest.raises(InvalidOutput):
        obs.load(out)


def test_symlinked_arrays_file_is_rejected(out, tmp_path):
    write_doc(out, {"format": 1, "records": []})
    np.savez(tmp_path / "real.npz", a=np.zeros(2))
    (out / obs.ARRAYS_NAME).symlink_to(tmp_path / "real.npz")
    with pytest.raises(InvalidOutput, match="not a regular file"):
        obs.load(out)


def test_pickled_object_array_is_rejected(out):
    write_doc(out, {"format": 1, "records": []})
    np.savez(out / obs.ARRAYS_NAME, a0=np.array([{"evil": 1}, None], dtype=object))
    with pytest.raises(InvalidOutput, match="array 'a0' .* holds Python objects .* only pickle could read"):
        obs.load(out)


def test_arrays_file_that_is_not_a_zip_is_rejected(out):
    write_doc(out, {"format": 1, "records": []})
    (out / obs.ARRAYS_NAME).write_bytes(b"\x80\x04not a zip")
    with pytest.raises(InvalidOutput, match="not a zip archive"):
        obs.load(out)


def test_oversize_arrays_are_rejected(out, monkeypatch):
    monkeypatch.setattr(obs, "MAX_ARRAYS_BYTES", 1000)
    write_doc(out, {"format": 1, "records": []})
    np.savez_compressed(out / obs.ARRAYS_NAME, a0=np.zeros(10_000))
    with pytest.raises(InvalidOutput, match="over the 1,000-byte cap"):
        obs.load(out)


# ---------------------------------------------------------------- decode / validate_data


def test_record_referring_to_a_missing_array_is_rejected():
    with pytest.raises(InvalidOutput, match="a record refers to a missing array 'a7'"):
        obs.validate_data(AnswerObservation, {"type": "list", "array": {"$array": "a7"}}, {"a0": np.zeros(1)})


def test_array_reference_that_is_not_a_string_is_rejected():
    with pytest.raises(InvalidOutput, match="missing array"):
        obs.decode({"$array": ["a0"]}, {"a0": np.zeros(1)})


def test_validate_data_rejects_extra_keys():
    data = {"module_type": "torch.nn.Sequential", "total": 23, "trainable": 23, "passed": True}
    with pytest.raises(InvalidOutput, match="passed: Extra inputs are not permitted"):
        obs.validate_data(ParamCountObservation, data, {})


@pytest.mark.parametrize("data", [
    {"module_type": "m", "total": "23", "trainable": 23},
    {"module_type": "m", "total": 23.0, "trainable": 23},
    {"module_type": "m", "total": True, "trainable": 23},
    {"module_type": "m", "total": 23},
], ids=["str-for-int", "float-for-int", "bool-for-int", "missing-field"])
def test_validate_data_is_strict(data):
    with pytest.raises(InvalidOutput):
        obs.validate_data(ParamCountObservation, data, {})


def test_validate_data_rejects_non_numeric_arrays():
    arrays = {"a0": np.array(["x", "y"])}
    with pytest.raises(InvalidOutput, match="arrays must be numeric"):
        obs.validate_data(AnswerObservation, {"type": "list", "array": {"$array": "a0"}}, arrays)


def test_validate_data_rejects_a_list_where_an_array_belongs():
    with pytest.raises(InvalidOutput, match="expected a numpy array"):
        obs.validate_data(AnswerObservation, {"type": "list", "array": [1.0, 2.0]}, {})


def test_rekeyed_records_keep_their_arrays_under_keys_of_their_own():
    writer = obs.ArrayWriter()
    data = writer.encode({"models": [{"w": np.arange(3)}, {"w": np.ones(2)}], "n": 1})
    record = obs.ProbeRecord.model_validate({"check": "acc", "status": "observed", "data": data})
    (renamed,), arrays = obs.rekeyed([record], writer.arrays, "d")
    assert set(arrays) == {"da0", "da1"} and not set(arrays) & set(writer.arrays)
    decoded = obs.decode(renamed.data, arrays)
    assert np.array_equal(decoded["models"][0]["w"], np.arange(3)) and decoded["n"] == 1
    assert record.data == data  # the original is left as it was
