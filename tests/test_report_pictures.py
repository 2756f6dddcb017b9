"""The report's pictures show what was proven: read back from the PNGs embedded in the HTML (their ``certify`` text
chunk, :func:`certify.report.picture_checks.read_claims`) and checked against the engine's results and against
float64 values computed here, not pixel by pixel.

* a falsified check's witness is marked at its coordinates, on a slice through it, with the witness's value;
* a certified check's map draws nothing above the proven upper bound and nothing in an above-threshold colour;
* an unknown check never shows as proven: no "proven" note, no green, no 'certified' on its metric line; the cells
  of its proven-sub-box map are exactly those whose sound bound is at or below 1 - margin, and sampling agrees;
* the picture checks themselves fail on a picture that contradicts its claims (so the checks above can fail);
* HTML and Markdown are self-contained (nothing fetched from a network) and the pictures are the same bytes under
  a fixed seed.
"""

import base64
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from random_nets import random_net

from certify.api import verify
from certify.certificate import CheckName, CheckResult, SupNormDetails, Verdict, Witness
from certify.config import VerifyConfig
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.quantity import Quantity
from certify.report import figures, picture_checks, plots, render
from certify.report.report import Report

BOX3 = Box(np.full(3, -1.0), np.full(3, 1.0), ("a", "b", "c"))
BOX2 = Box(np.full(2, -1.0), np.full(2, 1.0), ("a", "b"))
GREEN = "#1a7f37"  # the certified badge


def _config():
    return VerifyConfig(timeout=30.0, budget=200, seed=0, samples=1000)


def _embedded(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def _claims(html: str) -> list[dict]:
    return [picture_checks.read_claims(png) for png in _embedded(html)]


def _a_star_norms(net, pts: np.ndarray) -> np.ndarray:
    """||A*(x)||_2 on the state columns, in float64 through the IR and numpy's SVD (not the batched torch kernels
    the maps use)."""
    mats = np.asarray(net.pwa(pts)[0])[:, :, : net.n_states]
    return np.linalg.svd(mats, compute_uv=False)[:, 0]


def _pictured(net, box: Box, verdict: Verdict):
    """The dissipativity report of ``net`` over ``box`` (its verdict checked to be ``verdict``), its pictures and its
    HTML."""
    rep = verify(net, box, checks=["dissipativity"], config=_config())
    assert rep["dissipativity"].verdict is verdict
    pics = render.pictures(rep)
    return rep, pics, render.to_html(rep, pictures=pics)


@pytest.fixture(scope="module")
def falsified():
    """A 3-state ReLU net whose dissipativity is falsified (a replayed witness), its pictures and its HTML."""
    net = random_net(1, 3, (8,), 3, acts.relu(), weight_scale=1.2, bias_scale=0.2)
    return _pictured(net, BOX3, Verdict.FALSIFIED)


@pytest.fixture(scope="module")
def certified():
    net = random_net(1, 2, (8,), 2, acts.relu(), weight_scale=0.8, bias_scale=0.2)
    return _pictured(net, BOX2, Verdict.CERTIFIED)


def _unknown_report(details: SupNormDetails, verdict=Verdict.UNKNOWN) -> Report:
    """A tanh net with sup ||A*|| just below 1 and a dissipativity result with the given verdict and details, its
    witness the largest sampled point with its float64 value (the bracket a stopped search could report)."""
    net = random_net(3, 3, (8,), 3, acts.tanh(), weight_scale=0.96, bias_scale=0.2)
    x = plots.largest_sampled(net, BOX3, plots.Field(Quantity.A_STAR))  # about 0.969: below 1, not falsified
    value = float(_a_star_norms(net, x[None])[0])
    lower, upper = (value, 1.2) if verdict is Verdict.UNKNOWN else (value, 0.999)
    r = CheckResult(CheckName.DISSIPATIVITY, verdict, lower, upper, "boxes", 1.5, Witness(tuple(x), value),
                    reason="" if verdict is Verdict.CERTIFIED else "node budget of 40 spent", details=details)
    return Report("m.onnx", "ab" * 32, net.describe(), BOX3, 2.0, 1e-6, (r,), network=net)


@pytest.fixture(scope="module")
def unknown():
    """An unknown dissipativity result whose engine was the sub-box search, its pictures and its HTML."""
    rep = _unknown_report(SupNormDetails(proven_fraction=0.6, boxes=40, trace=((0.0, 0.99, 1.3), (1.5, 0.99, 1.2))))
    pics = render.pictures(rep)
    return rep, pics, render.to_html(rep, pictures=pics)


# ============================================================================================ falsified: the witness
def test_falsified_witness_is_marked_at_its_coordinates_on_a_slice_through_it(falsified):
    rep, pics, html = falsified
    r = rep["dissipativity"]
    maps = [c for c in _claims(html) if c["kind"] == "map" and c["check"] == "dissipativity"]
    assert len(maps) == 1
    claim = maps[0]
    (mark,) = [m for m in claim["marks"] if m["label"] == "witness"]
    assert mark["point"] == [r.witness.x[0], r.witness.x[1]]
    assert mark["value"] == pytest.approx(r.witness.value, rel=1e-9)
    assert mark["value"] > claim["threshold"] == 1.0
    # the slice through the witness: its third coordinate is where the map is cut, and the caption says so
    assert f"c = {r.witness.x[2]:.4g} (through the witness)" in claim["caption"]
    # the pixel is where the point is on the axes (linear in the data, within the frame's rounding)
    left, top, right, bottom = claim["axes"]
    col = left + (r.witness.x[0] - BOX3.lower[0]) / (BOX3.upper[0] - BOX3.lower[0]) * (right - left)
    row = bottom - (r.witness.x[1] - BOX3.lower[1]) / (BOX3.upper[1] - BOX3.lower[1]) * (bottom - top)
    assert abs(mark["pixel"][0] - col) <= 2 and abs(mark["pixel"][1] - row) <= 2
    assert picture_checks.report_problems(rep, pics) == []


def test_a_map_whose_witness_is_off_its_colour_is_caught(falsified):
    rep, pics, _ = falsified
    r = rep["dissipativity"]
    pic = next(p for p in pics if p.kind == "map")
    (mark,) = pic.marks
    # the ring moved to a corner of the plot area (where the colour is another value) and the value misreported
    left, top, _, _ = pic.axes
    moved = replace(pic, marks=(replace(mark, pixel=(left + 3, top + 3), value=0.5),))
    found = picture_checks.picture_problems(moved, r)
    assert any("not above the threshold" in p for p in found)
    assert any("claims stored in the PNG" in p for p in found)


# ============================================================================================ certified
def test_certified_map_draws_nothing_above_the_proven_bound(certified):
    rep, pics, html = certified
    r = rep["dissipativity"]
    (claim,) = [c for c in _claims(html) if c["kind"] == "map"]
    assert claim["value_range"][1] <= r.upper and claim["value_range"][1] < claim["threshold"]
    assert "Proven" in html and GREEN in html
    assert picture_checks.report_problems(rep, pics) == []
    # a map claiming a value above the proven bound is caught
    pic = next(p for p in pics if p.kind == "map")
    bad = replace(pic, value_range=(pic.value_range[0], r.upper + 0.1))
    assert any("above the proven upper bound" in p for p in picture_checks.picture_problems(bad, r))


# ============================================================================================ unknown
def test_unknown_check_never_shows_as_proven(unknown):
    rep, pics, html = unknown
    assert GREEN not in html and "<dt>Proven</dt>" not in html
    md = rep.to_markdown()
    assert "**Proven:**" not in md and "60% of the box's volume" in md
    assert not any("certified" in p.caption for p in pics)
    assert picture_checks.report_problems(rep, pics) == []


def test_proven_sub_boxes_are_those_a_sound_bound_proves_and_sampling_agrees(unknown):
    rep, _, html = unknown
    (claim,) = [c for c in _claims(html) if c["kind"] == "boxes"]
    limit = 1.0 - rep.margin
    cells = claim["boxes"]
    assert len(cells) == 64 and claim["threshold"] == limit
    proven = [c for c in cells if c["proven"]]
    assert 0 < len(proven) < len(cells)  # this net: some of the box proven, not all (the check stays unknown)
    assert all(c["proven"] == (c["bound"] <= limit) for c in cells)
    # the cells tile the box: the third coordinate over its whole range, the first two cut into 8 x 8 equal cells
    assert all(c["lower"][2] == -1.0 and c["upper"][2] == 1.0 for c in cells)
    assert math.fsum(np.prod(np.subtract(c["upper"], c["lower"])) for c in cells) == pytest.approx(BOX3.volume)
    # each bound is sound: float64 values at points of the cell (corners and random points) never exceed it
    rng = np.random.default_rng(0)
    net = rep.network
    bits = ((np.arange(8)[:, None] >> np.arange(3)) & 1).astype(bool)
    pts, bounds = [], []
    for c in cells:
        lo, hi = np.array(c["lower"]), np.array(c["upper"])
        pts.append(np.vstack([np.where(bits, lo, hi), lo + (hi - lo) * rng.random((60, 3))]))
        bounds.append(np.full(68, c["bound"]))
    assert np.all(_a_star_norms(net, np.vstack(pts)) <= np.concatenate(bounds) * (1 + 1e-12))
    # the largest value found is at most the bound of every cell that holds it, so those cells are not proven
    w = rep["dissipativity"].witness
    holding = [c for c in cells if all(c["lower"][k] <= w.x[k] <= c["upper"][k] for k in range(2))]
    assert holding and all(c["bound"] >= w.value for c in holding)
    assert w.value <= limit or not any(c["proven"] for c in holding)


def test_a_proven_box_map_that_overclaims_is_caught(unknown):
    rep, pics, _ = unknown
    pic = next(p for p in pics if p.kind == "boxes")
    k = next(i for i, c in enumerate(pic.boxes) if not c.proven)
    cells = list(pic.boxes)
    cells[k] = replace(cells[k], proven=True)
    found = picture_checks.picture_problems(replace(pic, boxes=tuple(cells)), rep["dissipativity"])
    assert any("above the limit" in p for p in found)
    assert any("not drawn in the proven colour" in p for p in found)


def test_no_proven_box_map_beside_a_certified_or_a_plain_unknown_check():
    for rep in (_unknown_report(SupNormDetails(proven_fraction=1.0, boxes=40), Verdict.CERTIFIED),
                _unknown_report(SupNormDetails(nodes=3, lps=3))):
        r = rep["dissipativity"]
        assert figures.proven_boxes_picture(rep, r, figures.check_field(r, rep.norm)) is None


# ============================================================================================ wording
@pytest.mark.parametrize("verdict", [Verdict.UNKNOWN, Verdict.FALSIFIED])
def test_metric_line_of_a_check_not_certified_never_says_certified(verdict):
    """--metric auto: the SDP's rate is a proposal; an unknown (or falsified) check's metric line must not print
    'certified rate' (it did)."""
    details = SupNormDetails(metric=((2.0, 0.1, 0.0), (0.1, 1.0, 0.0), (0.0, 0.0, 1.0)), metric_condition=2.1,
                             metric_rate=0.97, metric_rounds=2)
    falsified = verdict is Verdict.FALSIFIED
    r = CheckResult(CheckName.DISSIPATIVITY, verdict, 1.05 if falsified else 0.99, 1.2, "bnb", 1.0,
                    Witness((0.1, 0.2, 0.3), 1.05) if falsified else None, reason="budget", details=details)
    (metric,) = [text for label, text in render.check_notes(r) if label == "metric"]
    assert "certified" not in metric and "proposed by an SDP with rate 0.97" in metric
    certified = replace(r, verdict=Verdict.CERTIFIED, lower=0.9, upper=0.98, witness=None, reason="")
    (metric,) = [text for label, text in render.check_notes(certified) if label == "metric"]
    assert "certified rate sup ||T A*(x) T^-1||_2 <= 0.98" in metric


# ============================================================================================ self-contained, stable
def test_html_and_markdown_are_self_contained(falsified):
    rep, pics, html = falsified
    md = rep.to_markdown()
    for text in (html, md):
        bare = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # base64 may hold '//' itself
        assert not re.search(r"(https?:)?//[A-Za-z0-9]", bare)
        assert "<link" not in text and "<script" not in text and "url(" not in text and "@import" not in text
    # every src is an embedded PNG, and every picture is embedded once
    assert re.findall(r'src="([a-z]+):', html) == ["data"] * len(pics)
    assert sorted(_embedded(html)) == sorted(p.png for p in pics)


def test_pictures_are_the_same_bytes_under_a_fixed_seed(falsified):
    rep, pics, html = falsified
    again = verify(rep.network, BOX3, checks=["dissipativity"], config=_config())
    assert again["dissipativity"].witness == rep["dissipativity"].witness
    # the maps do not depend on the run's clock: the same bytes from a second run with the same seed
    assert [p.png for p in render.pictures(again) if p.kind == "map"] == [p.png for p in pics if p.kind == "map"]
    assert render.to_html(rep, pictures=pics) == html


@given(st.floats(0.0, 1e6, allow_nan=False, exclude_min=True), st.sampled_from([1.0 - 1e-6, 1.0, 0.5]))
def test_a_cell_bound_is_written_rounded_up_on_its_side_of_the_limit(v, limit):
    shown = float(plots.bound_label(v, limit))
    assert shown >= v and (shown <= limit) == (v <= limit)


@pytest.mark.parametrize("p", [1.0, math.inf])
def test_a_ball_start_set_is_drawn_as_the_slice_of_its_norm(p, monkeypatch):
    """The corners of a certified 1- or inf-norm ball's slice lie at distance r from x_bar in that norm, and the
    report of such a result hands that ball to its phase portrait, centred on x_bar."""
    c = np.array([0.2, -0.1, 0.3])
    pts = plots.ball_points(c, p, 0.5, (0, 2))
    full = np.tile(c, (pts.shape[0], 1))
    full[:, 0], full[:, 2] = pts[:, 0], pts[:, 1]
    np.testing.assert_allclose(np.linalg.norm(full - c, ord=p, axis=1), 0.5)
    from certify.certificate import BoundMethod, StabilityDetails

    net = random_net(0, 2, (4,), weight_scale=0.3)
    details = StabilityDetails(equilibria=((0.0, 0.0),), rate=0.5, contraction="certified", norm=p,
                               start_set="ball", box_share=0.5, radius=0.5)
    result = CheckResult(CheckName.STABILITY, Verdict.CERTIFIED, 0.4, 0.5, BoundMethod.REGIONS, 0.0, None, "", details)
    report = Report("<in-memory>", "", net.describe(), BOX2, p, 1e-6, (result,), network=net)
    drawn = []
    real = plots.phase_portrait
    monkeypatch.setattr(plots, "phase_portrait", lambda *a, **k: drawn.append(k) or real(*a, **k))
    kinds = [pic.kind for pic in figures.pictures(report)]
    assert "trajectories" in kinds, kinds
    (kwargs,) = drawn
    centre, norm, radius = kwargs["ball"]
    assert np.array_equal(centre, np.zeros(2)) and norm == p and radius == 0.5 and kwargs["ellipsoid"] is None
    np.testing.assert_array_equal(kwargs["at"], np.zeros(2))
