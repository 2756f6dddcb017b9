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
    assert "| dissipativity | unknown |" in md and "Reason: why" in md


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
