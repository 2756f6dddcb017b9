"""Region files (box.yaml): the accepted forms and every error, each naming the file and the key."""

import math

import numpy as np
import pytest

from certify.errors import RegionError
from certify.importers.region_file import load_region
from certify.ir.box import Box


def write(tmp_path, text, name="box.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_named_states_and_inputs(tmp_path):
    p = write(tmp_path, "states:\n  level_1: [0.0, 1.0]\n  level_2: [0, 2]\ninputs:\n  pump: [0.0, 0.5]\n"
                        "norm: inf\nmargin: 1.0e-3\n")
    r = load_region(p)
    assert r.box.names == ("level_1", "level_2", "pump")
    assert r.box.lower.tolist() == [0, 0, 0] and r.box.upper.tolist() == [1, 2, 0.5]
    assert r.box.n_states == 2 and math.isinf(r.norm) and r.margin == 1e-3


def test_plain_form(tmp_path):
    r = load_region(write(tmp_path, "lower: [-1, -2]\nupper: [1, 2]\nnorm: 1\n"))
    assert r.box.dim == 2 and r.box.n_states == 2 and r.norm == 1.0 and r.margin is None
    assert load_region(tmp_path / "box.yaml").box.upper.tolist() == [1, 2]


@pytest.mark.parametrize(
    "text,needle",
    [
        ("states:\n  a: [1.0, 0.0]\n", "states.a has lower 1.0 > upper 0.0"),
        ("states:\n  a: [.nan, 1.0]\n", "states.a has a NaN"),
        ("states:\n  a: [0, .inf]\n", "infinite"),
        ("states:\n  a: [0, 1]\nbogus: 3\n", "unknown key 'bogus'"),
        ("states:\n  a: [0, 1, 2]\n", "states.a must be a pair"),
        ("states:\n  a: [0, x]\n", "states.a must hold two numbers"),
        ("states: [0, 1]\n", "'states' must map each name"),
        ("lower: [0, 0]\nupper: [1]\n", "'lower' has 2 entries but 'upper' has 1"),
        ("lower: [0, 2]\nupper: [1, 1]\n", "lower[1] = 2.0 > upper[1] = 1.0"),
        ("lower: [0]\n", "'upper' is missing"),
        ("states:\n  a: [0, 1]\nnorm: 3\n", "norm must be 1, 2 or inf"),
        ("states:\n  a: [0, 1]\nmargin: -1\n", "margin must be a number in [0, 1)"),
        ("states: {a: [0, 1]\n", "not valid YAML"),
        ("!!python/object/apply:os.system ['echo hacked']\n", "tag !!python/object/apply:os.system is not allowed"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("norm: 2\n", "needs 'states'"),
        ("states:\n  a: [0, 1]\nlower: [0]\nupper: [1]\n", "either 'states'"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(RegionError) as err:
        load_region(p)
    msg = str(err.value)
    assert str(p) in msg and needle in msg, msg
    assert "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(RegionError, match="not found"):
        load_region(tmp_path / "nope.yaml")


def test_box_validation_and_helpers():
    b = Box(np.array([0.0, -1.0]), np.array([1.0, 1.0]))
    assert b.names == ("x0", "x1") and b.volume == 2.0
    assert b.contains(np.array([[0.5, 0.0], [2.0, 0.0]])).tolist() == [True, False]
    with pytest.raises(RegionError):
        Box(np.array([1.0]), np.array([0.0]))
    with pytest.raises(RegionError):
        Box(np.array([np.nan]), np.array([0.0]))
