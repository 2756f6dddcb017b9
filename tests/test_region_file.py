"""Region files that must be refused with one clear RegionError naming the file and the key (issue 8, item 10):
duplicate keys, YAML 1.1 readings, numbers float64 cannot hold, deep nesting, widths that overflow, paths that are
not regular files, sizes that do not match the model, files too large to read; and Region.from_yaml."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

from certify.errors import RegionError
from certify.importers import region_file
from certify.importers.region_file import Region, load_region
from certify.ir.box import Box


def write(tmp_path, text: str, name: str = "box.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def refused(path, *needles, **kwargs) -> str:
    with pytest.raises(RegionError) as err:
        load_region(path, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# --------------------------------------------------------------------------- duplicate keys, at every level
@pytest.mark.parametrize("text, key, line", [
    ("states:\n  a: [0, 1]\n  b: [0, 1]\n  a: [5, 6]\n", "states.a", 4),  # a repeated state replaced the first
    ("states:\n  a: [0, 1]\ninputs:\n  u: [0, 1]\n  u: [2, 3]\n", "inputs.u", 5),
    ("states:\n  a: [0, 1]\nnorm: 2\nnorm: inf\n", "norm", 4),
    ("states: {a: [0, 1], a: [1, 2]}\n", "states.a", 1),
    ("lower: [0]\nupper: [1]\nlower: [-1]\n", "lower", 3),
])
def test_duplicate_keys_are_refused_with_key_and_line(tmp_path, text, key, line):
    refused(write(tmp_path, text), f"{key} (line {line})", "duplicate key")


def test_the_same_name_under_states_and_inputs_is_refused(tmp_path):
    refused(write(tmp_path, "states:\n  a: [0, 1]\ninputs:\n  a: [0, 1]\n"), "'a'", "both 'states' and 'inputs'")


# --------------------------------------------------------------------------- YAML 1.1 oddities
@pytest.mark.parametrize("text, needles", [
    ("states:\n  a: [0, 1:30]\n", ("states.a[1]", "1:30", "base-60")),  # YAML 1.1 reads 90
    ("states:\n  on: [0, 1]\n", ("'on'", "boolean")),  # YAML 1.1 reads the key True
    ("states:\n  a: [0, yes]\n", ("states.a[1]", "'yes'",)),
    ("states:\n  a: [0, 017]\n", ("states.a[1]", "octal")),  # YAML 1.1 reads 15
    ("states:\n  a: [0, 0o17]\n", ("states.a[1]", "0o17")),
    ("states:\n  a: [0, 1_000]\n", ("states.a[1]", "1_000")),
    ("states:\n  .inf: [0, 1]\n", ("'.inf'", "quote it")),  # a name that reads as a number
    ("states:\n  1: [0, 1]\n", ("'1'", "quote it")),
    ("states:\n  null: [0, 1]\n", ("'null'", "quote it")),
])
def test_yaml_1_1_readings_are_refused(tmp_path, text, needles):
    refused(write(tmp_path, text), *needles)


def test_yaml_1_2_scalars_read_as_the_core_schema(tmp_path):
    r = load_region(write(tmp_path, "states:\n  y: [-1e-3, 1e3]\n  n: [.5, +2.]\n  '1:30': [0, 0x10]\nnorm: .inf\n"
                                    "margin: 1e-6\n"))
    assert r.box.names == ("y", "n", "1:30")
    assert r.box.lower.tolist() == [-1e-3, 0.5, 0.0] and r.box.upper.tolist() == [1e3, 2.0, 16.0]
    assert math.isinf(r.norm) and r.margin == 1e-6


# --------------------------------------------------------------------------- numbers float64 cannot hold
@pytest.mark.parametrize("number, needle", [
    ("1" + "0" * 399, "overflows float64"),  # a 400-digit integer
    ("9" * 5000, "overflows float64"),  # past Python's int-from-text limit too
    ("1e400", "overflows float64"),
    ("1e-400", "would read as 0"),
])
def test_numbers_that_do_not_fit_float64_are_refused(tmp_path, number, needle):
    refused(write(tmp_path, f"states:\n  a: [0, {number}]\n"), "states.a[1]", needle)
    refused(write(tmp_path, f"lower: [0]\nupper: [{number}]\n"), "upper[0]", needle)


# --------------------------------------------------------------------------- nesting, documents, tags, anchors
@pytest.mark.parametrize("text", ["[" * 20_000 + "]" * 20_000, "[\n" * 20_000, "- " * 20_000 + "1\n",
                                  "states:\n  a: " + "{b: " * 20_000 + "1" + "}" * 20_000 + "\n"])
def test_deep_nesting_is_a_clear_error(tmp_path, text):
    assert sys.getrecursionlimit() < 20_000
    refused(write(tmp_path, text), "nest")


def test_deep_nesting_with_the_pure_python_parser(monkeypatch):
    import yaml

    from certify.importers import yaml_file

    monkeypatch.setattr(yaml_file, "_Parser", yaml.SafeLoader)
    parse_yaml = yaml_file.parse_yaml
    for text in ("[" * 20_000 + "]" * 20_000, "- " * 20_000 + "1\n"):
        with pytest.raises(RegionError, match="nested more than"):
            parse_yaml(text, "box.yaml", RegionError, "region file")
    with pytest.raises(RegionError, match=r"states\.a \(line 3\): duplicate key"):
        parse_yaml("states:\n  a: [0, 1]\n  a: [1, 2]\n", "box.yaml", RegionError, "region file")


@pytest.mark.parametrize("text, needle", [
    ("states:\n  a: [0, 1]\n---\nstates:\n  b: [0, 1]\n", "one YAML document"),
    ("states:\n  a: &r [0, 1]\n  b: *r\n", "anchors and aliases"),
    ("states:\n  a: !!python/tuple [0, 1]\n", "tag !!python/tuple is not allowed"),
    ("states: !!python/object:collections.OrderedDict {}\n", "not allowed"),
    ("states:\n  a: !custom [0, 1]\n", "tag !custom"),
    ("states:\n  ? [a, b]\n  : [0, 1]\n", "a key must be a name"),
])
def test_structures_outside_plain_yaml_are_refused(tmp_path, text, needle):
    refused(write(tmp_path, text), needle)


# --------------------------------------------------------------------------- widths, names
@pytest.mark.parametrize("text, needle", [
    ("states:\n  a: [-1.0e308, 1.0e308]\n", "states.a"),
    ("lower: [0, -1.7e308]\nupper: [1, 1.7e308]\n", "lower[1]"),
])
def test_a_width_that_overflows_is_a_region_error(tmp_path, text, needle):
    refused(write(tmp_path, text), needle, "upper - lower overflows")


def test_box_refuses_a_width_that_overflows():
    with pytest.raises(RegionError, match="upper - lower overflows"):
        Box(np.array([-1e308, 0.0]), np.array([1e308, 1.0]))


@pytest.mark.parametrize("text, needle", [
    ("lower: [0, 0]\nupper: [1, 1]\nnames: [a, 2]\n", "names[1]"),
    ("lower: [0, 0]\nupper: [1, 1]\nnames: [a, a]\n", "'a' is given twice"),
    ("states:\n  '': [0, 1]\n", "non-empty"),
    ("states:\n  \"a\\nb\": [0, 1]\n", "control characters"),
    ("states:\n  \"a\\nb\": [0, 1]\n  \"a\\nb\": [0, 1]\n", "duplicate key 'a\\nb'"),
])
def test_names_must_be_distinct_text(tmp_path, text, needle):
    refused(write(tmp_path, text), needle)


# --------------------------------------------------------------------------- paths that are not regular files
def test_a_folder_is_not_reported_as_missing(tmp_path):
    msg = refused(tmp_path, "is a folder")
    assert "not found" not in msg


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_fifo_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "box.yaml"
    os.mkfifo(fifo)  # nobody writes: opening it for reading without O_NONBLOCK would wait forever
    refused(fifo, "named pipe")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused_without_reading_it():
    refused("/dev/zero", "is a device")


def test_a_missing_file_is_reported_as_missing(tmp_path):
    refused(tmp_path / "nope.yaml", "not found")


# --------------------------------------------------------------------------- sizes
def big_region(tmp_path, n: int):
    lines = "".join(f"  s{i}: [0.0, 1.0]\n" for i in range(n))
    return write(tmp_path, "states:\n" + lines)


def test_a_region_of_another_size_than_the_model_stops_being_read(tmp_path):
    # 200,000 states for a 2-input model: refused after n_in + 64 entries, with the sizes named
    path = big_region(tmp_path, 200_000)
    refused(path, "states (line 68)", "more than 66 entries", "the model takes 2 inputs", n_in=2)
    refused(write(tmp_path, "states:\n  a: [0, 1]\n  b: [0, 1]\n  c: [0, 1]\n", "three.yaml"),
            "has 3 coordinates but the model takes 2 inputs", n_in=2)
    refused(write(tmp_path, "lower: [0, 0, 0]\nupper: [1, 1, 1]\n", "plain.yaml"), "has 3 coordinates", n_in=2)
    assert load_region(big_region(tmp_path, 3), n_in=3).box.dim == 3


def test_a_region_longer_than_the_largest_accepted_is_refused(tmp_path):
    n = region_file.MAX_COORDINATES + 1
    path = write(tmp_path, "lower: [" + "0, " * (n - 1) + "0]\nupper: [1]\n")
    refused(path, "lower (line 1)", f"more than {region_file.MAX_COORDINATES} entries")


def test_a_file_larger_than_the_limit_is_not_read_whole(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:  # sparse: 4 GiB that take no disk space
        fh.write(b"states:\n  a: [0, 1]\n")
        fh.truncate(4 << 30)
    refused(path, "larger than 16 MiB")


def test_text_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "box.yaml"
    path.write_bytes(b"states:\n  \xff: [0, 1]\n")
    refused(path, "not UTF-8")


# --------------------------------------------------------------------------- Region.from_yaml
def test_region_from_yaml_keeps_norm_and_margin(tmp_path):
    path = write(tmp_path, "states:\n  a: [0, 1]\n  b: [-1, 1]\nnorm: inf\nmargin: 1.0e-3\n")
    r = Region.from_yaml(path)
    assert isinstance(r, Region) and r.box.names == ("a", "b") and r.path == str(path)
    assert math.isinf(r.norm) and r.margin == 1e-3
    plain = Region.from_yaml(write(tmp_path, "lower: [0]\nupper: [1]\n", "plain.yaml"))
    assert plain.norm is None and plain.margin is None


def test_region_validates_its_fields():
    box = Box(np.zeros(2), np.ones(2))
    assert Region(box, norm="inf", margin=0).norm == math.inf
    with pytest.raises(TypeError):
        Region("box.yaml")
    with pytest.raises(RegionError):
        Region(box, norm=3)
    with pytest.raises(RegionError):
        Region(box, margin=1.5)


def test_an_integer_too_large_for_float64_is_a_region_error():
    """Printing an int of more than 4300 digits raises inside Python: the message names the key, never the value."""
    with pytest.raises(RegionError, match=r"lower\[0\] overflows float64"):
        region_file.parse_region({"lower": [10**5000], "upper": [10**5000]}, "r")
