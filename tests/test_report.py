"""Report rendering: JSON schema, Markdown, self-contained HTML with images, JUnit parsed back with a real parser."""

import base64
import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from random_nets import random_net

from certify.certificate import CheckName, CheckResult, Verdict, Witness
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.report.report import Report


def _report(verdicts, network=True):
    net = random_net(0, 2, (8,), 2, acts.relu(), weight_scale=0.5, bias_scale=0.1, out_scale=0.3, out_bias_scale=0.0,
                     fan_in=False)
    box = Box(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), ("a", "b"))
    results = []
    for name, v in verdicts:
        w = Witness((0.5, -0.25), 1.25) if v is Verdict.FALSIFIED else None
        lower, upper = (1.25, math.inf) if w else (0.5, 0.75 if v is Verdict.CERTIFIED else 1.5)
        reason = "" if v is Verdict.CERTIFIED else "why"
        results.append(CheckResult(name, v, lower, upper, "sample", 0.01, w, reason=reason))
    return Report("m.onnx", "ab" * 32, net.describe(), box, 2.0, 1e-6, tuple(results), network=net if network else None)


def test_json_schema_and_infinity():
    rep = _report([(CheckName.DISSIPATIVITY, Verdict.FALSIFIED), (CheckName.CONTRACTION, Verdict.CERTIFIED)])
    data = json.loads(rep.to_json())
    assert data["schema"] == "certify/1" and data["verdict"] == "falsified" and data["norm"] == "2"
    d = data["checks"]["dissipativity"]
    assert d["upper"] == "inf" and d["witness"] == {"x": [0.5, -0.25], "value": 1.25}
    assert data["checks"]["contraction"]["witness"] is None
    assert data["region"]["names"] == ["a", "b"]


@pytest.mark.parametrize(
    "verdicts,overall",
    [
        ([Verdict.CERTIFIED, Verdict.CERTIFIED], Verdict.CERTIFIED),
        ([Verdict.CERTIFIED, Verdict.UNKNOWN], Verdict.UNKNOWN),
        ([Verdict.UNKNOWN, Verdict.FALSIFIED], Verdict.FALSIFIED),
    ],
)
def test_overall_verdict(verdicts, overall):
    rep = _report(list(zip([CheckName.DISSIPATIVITY, CheckName.CONTRACTION], verdicts)))
    assert rep.verdict is overall


def test_markdown_has_table_and_reasons():
    md = _report([(CheckName.DISSIPATIVITY, Verdict.UNKNOWN)]).to_markdown()
    assert "| dissipativity | unknown |" in md and "\n- **Reason:** why" in md


def test_html_is_self_contained_with_png_images(tmp_path):
    rep = _report([(CheckName.DISSIPATIVITY, Verdict.FALSIFIED)])
    path = tmp_path / "r.html"
    text = rep.to_html(path)
    assert path.read_text() == text
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(imgs) >= 3
    for img in imgs:
        assert base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in text and "https://" not in text
    assert rep._repr_html_().startswith("<!DOCTYPE html>")


def test_html_without_network_has_no_pictures():
    text = _report([(CheckName.DISSIPATIVITY, Verdict.CERTIFIED)], network=False).to_html()
    assert "data:image/png" not in text and "certified" in text


@pytest.mark.parametrize("unknown_as", ["failure", "skipped"])
def test_junit_parses_back(tmp_path, unknown_as):
    rep = _report([(CheckName.DISSIPATIVITY, Verdict.FALSIFIED), (CheckName.CONTRACTION, Verdict.UNKNOWN),
                   (CheckName.WEIGHT_NORM, Verdict.CERTIFIED)])
    path = tmp_path / "junit.xml"
    rep.to_junit(path, unknown_as=unknown_as)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuite" and root.get("tests") == "3"
    cases = {c.get("name"): c for c in root.findall("testcase")}
    assert set(cases) == {"dissipativity", "contraction", "weight_norm"}
    assert cases["dissipativity"].find("failure") is not None
    assert cases["weight_norm"].find("failure") is None and cases["weight_norm"].find("skipped") is None
    if unknown_as == "failure":
        assert cases["contraction"].find("failure") is not None and root.get("failures") == "2"
    else:
        assert cases["contraction"].find("skipped") is not None and root.get("skipped") == "1"


def test_verdict_compares_equal_to_its_string():
    rep = _report([(CheckName.DISSIPATIVITY, Verdict.CERTIFIED)])
    assert rep.verdict == "certified" and rep.verdict != "unknown" and rep.verdict.value == "certified"
    assert str(rep.verdict) == "certified" and f"{rep.verdict}" == "certified"
    assert rep.results[0].verdict == "certified" and rep.verdict is Verdict.CERTIFIED


def test_report_indexed_by_check_name():
    rep = _report([(CheckName.DISSIPATIVITY, Verdict.CERTIFIED), (CheckName.CONTRACTION, Verdict.UNKNOWN)])
    assert rep["contraction"] is rep.results[1] and rep[CheckName.DISSIPATIVITY] is rep.results[0]
    assert "contraction" in rep and "gain" not in rep and rep.checks == ("dissipativity", "contraction")
    with pytest.raises(KeyError, match="dissipativity, contraction"):
        rep["gain"]


def test_report_has_no_truth_value():
    rep = _report([(CheckName.DISSIPATIVITY, Verdict.FALSIFIED)])
    with pytest.raises(TypeError, match='report.verdict == "certified"'):
        bool(rep)
    with pytest.raises(TypeError):
        if rep:
            pass


def _named_report(names):
    res = CheckResult(CheckName.GAIN, Verdict.UNKNOWN, 0.5, 1.5, "sample", 0.01, reason="why *not* <b>|")
    box = Box(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), names)
    return Report("m_<i>x</i>.onnx", "ab" * 32, "2-8-2 relu", box, 2.0, 1e-6, (res,))


def test_markdown_escapes_user_text():
    md = _named_report(("<script>alert(1)</script>", "a|b*c_")).to_markdown()
    assert "<script>" not in md and "</script>" not in md and "<i>" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert r"a\|b\*c\_" in md  # no table cell split, no emphasis
    assert r"why \*not\* &lt;b&gt;\|" in md
    assert "| gain | unknown |" in md  # our own names stay readable


def test_html_escapes_user_text():
    text = _named_report(("<script>alert(1)</script>", "b")).to_html(pictures=False)
    assert "<script>" not in text and "&lt;script&gt;" in text and "<i>" not in text


def test_junit_survives_control_characters():
    rep = _named_report(("a", "c"))
    res = CheckResult(CheckName.GAIN, Verdict.UNKNOWN, 0.5, 1.5, "sample", 0.01, reason="node \x01 \x1b[31m")
    rep = Report(rep.model_path + "\x02", rep.model_sha256, rep.model_description, rep.box, 2.0, 1e-6, (res,))
    root = ET.fromstring(rep.to_junit())  # a real parser: XML 1.0 cannot hold these characters
    case = root.find("testcase")
    assert case.get("classname").startswith("m_<i>x</i>.onnx") and "node" in case.find("failure").text


def test_junit_records_provenance():
    from certify.config import VerifyConfig
    from certify.report.provenance import Provenance

    rep = _named_report(("a", "c"))
    rep = Report(rep.model_path, rep.model_sha256, rep.model_description, rep.box, 2.0, 1e-6, rep.results,
                 provenance=Provenance.of(VerifyConfig(seed=7, budget=11, timeout=3.5)))
    root = ET.fromstring(rep.to_junit())
    props = {p.get("name"): p.get("value") for p in root.find("properties")}
    assert props["option.seed"] == "7" and props["option.budget"] == "11" and props["option.timeout"] == "3.5"
    assert props["certify.version"] and props["version.numpy"] == np.__version__


def test_json_records_tool_and_options_keeping_every_key():
    from certify.config import VerifyConfig
    from certify.report.provenance import Provenance

    rep = _report([(CheckName.DISSIPATIVITY, Verdict.CERTIFIED)])
    data = json.loads(rep.to_json())
    assert data["tool"]["name"] == "certify" and data["options"] is None
    rep = Report(rep.model_path, rep.model_sha256, rep.model_description, rep.box, 2.0, 1e-6, rep.results,
                 provenance=Provenance.of(VerifyConfig(seed=3, budget=5, norm=math.inf, method="bnb")))
    data = json.loads(rep.to_json())
    assert {"schema", "model", "region", "norm", "margin", "verdict", "checks"} <= set(data)
    opts = data["options"]
    assert opts["seed"] == 3 and opts["budget"] == 5 and opts["norm"] == "inf" and opts["method"] == "bnb"
    assert set(opts) >= {"seed", "samples", "timeout", "budget", "method", "norm", "margin", "exact", "device"}
    assert data["versions"]["numpy"] == np.__version__ and "torch" in data["versions"]


def test_report_files_are_written_atomically(tmp_path, monkeypatch):
    import os

    rep = _report([(CheckName.DISSIPATIVITY, Verdict.CERTIFIED)], network=False)
    path = tmp_path / "junit.xml"
    path.write_text("previous")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ValueError, match="No space left on device"):
        rep.to_junit(path)
    assert path.read_text() == "previous" and sorted(os.listdir(tmp_path)) == ["junit.xml"]
    monkeypatch.undo()
    rep.to_html(path)
    assert path.read_text().startswith("<!DOCTYPE html>") and sorted(os.listdir(tmp_path)) == ["junit.xml"]
