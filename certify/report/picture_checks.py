"""Checks that a report's pictures can be read and agree with its table (used by the tests and by
``benchmarks/report_pictures.py``, which renders every zoo model's report).

:func:`picture_problems` decodes one :class:`~certify.report.plots.Picture` (Pillow, which matplotlib depends on)
and returns what is wrong with it, as sentences (empty: nothing):

* the PNG decodes, has a sensible size and is not blank (enough distinct colours, something drawn in the plot area);
* a map never contradicts the verdict: no value drawn exceeds the proven upper bound (under any verdict); under a
  certified check with a threshold, no pixel of the plot area has an above-threshold colour; under a falsified
  check, the colour under the witness's ring is the colour of the witness's value, on the above-threshold side of
  the scale, and that value is the witness's (so the slice passes through the witness);
* a bracket plot spans the check's time as the table states it;
* a proven-sub-box map draws as proven only cells whose sound bound is at or below the limit, in the proven colour,
  covers the box with its cells, and no value attained at a marked point exceeds its cell's bound;
* the claims stored in the PNG (its ``certify`` text chunk, :func:`read_claims`) are the picture's.

:func:`screenshot` takes a real browser's picture of an HTML file when a headless Chromium is installed (None
otherwise), and :func:`screenshot_problems` checks it the same way (decodes, not blank, the embedded pictures drawn).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..certificate import CheckName, CheckResult, Verdict
from .plots import Picture, strict_json

MIN_SIZE, MAX_SIZE = 200, 2400  # pixels, each side
COLOUR_TOLERANCE = 12  # per channel, 0-255: antialiasing at a cell's edge
_SIDE = 30  # red minus blue beyond which a pixel is on the above-threshold side of the diverging scale
# checks whose witness value is the value of the field the map draws
_FIELD_WITNESS = (CheckName.DISSIPATIVITY, CheckName.CONTRACTION, CheckName.GAIN, CheckName.INVARIANCE)


def decode(png: bytes) -> np.ndarray:
    """The picture as an (H, W, 3) uint8 array (ValueError when it is not a PNG)."""
    from PIL import Image  # deferred on purpose: Pillow loads only when pictures are checked

    img = Image.open(io.BytesIO(png))
    if img.format != "PNG":
        raise ValueError(f"not a PNG but {img.format}")
    return np.asarray(img.convert("RGB"))


def read_claims(png: bytes) -> dict | None:
    """What a picture claims (:meth:`certify.report.plots.Picture.claims`), read back from its PNG's ``certify``
    text chunk (non-finite numbers as the strings "inf", "-inf", "nan"), or None when it has none."""
    from PIL import Image  # deferred on purpose: Pillow loads only when pictures are checked

    text = Image.open(io.BytesIO(png)).text.get("certify")
    return None if text is None else json.loads(text)


def blank_problems(rgb: np.ndarray, what: str) -> list[str]:
    """Size and content: a picture of sensible size with more than a few colours."""
    h, w = rgb.shape[:2]
    out = []
    if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        out.append(f"{what}: size {w}x{h} is outside [{MIN_SIZE}, {MAX_SIZE}]")
    colours = np.unique(rgb.reshape(-1, 3), axis=0).shape[0]
    if colours < 16 or float(rgb.std()) < 5.0:
        out.append(f"{what}: blank or uniform ({colours} colours, std {rgb.std():.3g})")
    return out


def _inside(rgb: np.ndarray, box, inset: int = 2) -> np.ndarray:
    left, top, right, bottom = box
    return rgb[top + inset: bottom - inset, left + inset: right - inset]


def _above_side(pixels: np.ndarray) -> np.ndarray:
    p = pixels.astype(int)
    return (p[..., 0] - p[..., 2]) > _SIDE


def picture_problems(pic: Picture, result: CheckResult | None) -> list[str]:
    """What is wrong with one picture (module docstring); ``result``: the check it belongs to (None: general)."""
    what = f"{pic.check or 'state space'} {pic.kind} ({pic.caption[:60]})"
    try:
        rgb = decode(pic.png)
    except Exception as exc:  # any decoding failure is the finding
        return [f"{what}: does not decode: {exc}"]
    out = blank_problems(rgb, what)
    if read_claims(pic.png) != json.loads(json.dumps(strict_json(pic.claims()))):
        out.append(f"{what}: the claims stored in the PNG are not the picture's")
    if pic.axes is not None:
        area = _inside(rgb, pic.axes)
        if area.size == 0:
            out.append(f"{what}: the plot area {pic.axes} is empty")
        elif pic.kind != "map" and np.mean(np.any(area < 235, axis=-1)) < 0.002:
            out.append(f"{what}: nothing is drawn in the plot area")
    if result is None:
        return out
    if pic.kind == "map":
        out += _map_problems(pic, result, rgb, what)
    if pic.kind == "boxes":
        out += _boxes_problems(pic, result, rgb, what)
    if pic.kind == "bracket" and pic.span is not None:
        if abs(pic.span[1] - result.seconds) > 1e-9 * max(1.0, result.seconds):
            out.append(f"{what}: spans {pic.span[1]:.3f} s but the table says {result.seconds:.3f} s")
        if pic.span[0] != 0.0:
            out.append(f"{what}: starts at {pic.span[0]:.3f} s, not when the check started")
    return out


def _map_problems(pic: Picture, r: CheckResult, rgb: np.ndarray, what: str) -> list[str]:
    out = []
    thr = pic.threshold
    lo, hi = pic.value_range
    # upper is sound under every verdict: no point of the box has a larger value of the check's own quantity (a
    # spectral-radius map, beside a refutation, draws another quantity)
    if r.check in _FIELD_WITNESS and "spectral radius" not in pic.caption:
        if hi > r.upper + 1e-9 * max(1.0, abs(r.upper)):
            out.append(f"{what}: draws {hi:.10g} above the proven upper bound {r.upper:.10g}")
    if r.verdict is Verdict.CERTIFIED and thr is not None:
        if hi >= thr:
            out.append(f"{what}: a certified check's map reaches {hi:.10g} >= the threshold {thr:g}")
        area = _inside(rgb, pic.axes)
        red = int(_above_side(area).sum())
        if red:
            out.append(f"{what}: {red} pixels have an above-threshold colour under a certified verdict")
    if r.verdict is Verdict.FALSIFIED and thr is not None:
        witnesses = [m for m in pic.marks if m.label in ("witness", "unstable equilibrium")]
        if r.witness is not None and r.check in _FIELD_WITNESS and not witnesses:
            out.append(f"{what}: the witness of a falsified check is not marked")
        for m in witnesses:
            if m.value is None or not m.value > thr - 1e-12 * max(1.0, abs(thr)):
                out.append(f"{what}: the map shows {m.value} at the witness, not above the threshold {thr:g}")
            if r.check in _FIELD_WITNESS and r.witness is not None and m.value is not None and \
                    abs(m.value - r.witness.value) > 1e-6 * max(1.0, abs(r.witness.value)):
                out.append(f"{what}: the map shows {m.value:.10g} at the witness, whose value is "
                           f"{r.witness.value:.10g} (the slice misses it)")
            out += _colour_under(rgb, m, what, pic.axes)
    return out


def _boxes_problems(pic: Picture, r: CheckResult, rgb: np.ndarray, what: str) -> list[str]:
    """A proven-sub-box map: only bounds at or below the limit are drawn as proven, each cell's colour is the one its
    claim says, the cells cover the box, and no marked value (attained at a replayed point) exceeds the bound of a
    cell that holds it (that would make the bound unsound)."""
    from .plots import PROVEN_FACE

    out = []
    if r.verdict is Verdict.CERTIFIED:
        out.append(f"{what}: a proven-sub-box map under a certified check (the whole box was proven)")
    face = np.array([int(PROVEN_FACE[k: k + 2], 16) for k in (1, 3, 5)])
    volume = 0.0
    # the two coordinates the cells cut (the marks' coordinates, in this order); the others span the whole box
    cut = [k for k in range(len(pic.boxes[0].lower)) if len({c.lower[k] for c in pic.boxes}) > 1] if pic.boxes else []
    for c in pic.boxes:
        if c.proven and not c.bound <= pic.threshold:
            out.append(f"{what}: a cell drawn proven has bound {c.bound:.10g} above the limit {pic.threshold:.10g}")
        col, row = c.pixel
        patch = rgb[max(row - 6, 0): row + 7, max(col - 14, 0): col + 15].astype(int)
        share = float(np.mean(np.abs(patch - face).max(axis=-1) <= COLOUR_TOLERANCE)) if patch.size else 0.0
        if c.proven and share < 0.3:
            out.append(f"{what}: the proven cell at pixel {c.pixel} is not drawn in the proven colour")
        if not c.proven and share > 0.02:
            out.append(f"{what}: the cell at pixel {c.pixel}, not proven, is drawn in the proven colour")
        volume += float(np.prod(np.subtract(c.upper, c.lower)))
        for m in pic.marks:
            inside = all(c.lower[k] <= x <= c.upper[k] for k, x in zip(cut, m.point))
            if inside and m.value is not None and m.value > c.bound * (1 + 1e-12):
                out.append(f"{what}: {m.label} value {m.value:.10g} exceeds the bound {c.bound:.10g} of its cell")
    if pic.boxes:
        total = float(np.prod([max(h - lo, 0.0) for lo, h in zip(pic.boxes[0].lower, pic.boxes[-1].upper)]))
        if abs(volume - total) > 1e-9 * max(total, 1e-300):
            out.append(f"{what}: the cells' volume {volume:.6g} is not the box's {total:.6g}")
    return out


def _colour_under(rgb: np.ndarray, m, what: str, axes, radius: int = 3) -> list[str]:
    """The colour the map gives the mark's value is drawn within ``radius`` pixels of the mark's centre (inside the
    plot area's frame), and it is on the above-threshold side of the scale."""
    if m.rgb is None:
        return [f"{what}: no colour for the value at the {m.label}"]
    c, row = m.pixel
    h, w = rgb.shape[:2]
    if not (0 <= row < h and 0 <= c < w):
        return [f"{what}: the {m.label} at pixel {m.pixel} lies outside the picture"]
    left, top, right, bottom = axes
    r0, r1 = max(top + 1, row - radius), min(bottom - 1, row + radius + 1)
    c0, c1 = max(left + 1, c - radius), min(right - 1, c + radius + 1)
    if r0 >= r1 or c0 >= c1:
        return [f"{what}: the {m.label} at pixel {m.pixel} lies outside the plot area {axes}"]
    patch = rgb[r0:r1, c0:c1].astype(int)
    diff = np.abs(patch - np.array(m.rgb)).max(axis=-1)
    out = []
    if diff.min() > COLOUR_TOLERANCE:
        out.append(f"{what}: the colour under the {m.label} is not that of its value {m.value:.6g} (closest pixel "
                   f"differs by {int(diff.min())})")
    if not _above_side(np.array(m.rgb)[None]).all():
        out.append(f"{what}: the value {m.value:.6g} at the {m.label} has a colour {m.rgb} below the threshold")
    return out


def report_problems(report, pics: list[Picture]) -> list[str]:
    """Every picture of a report checked against its check's result (:func:`picture_problems`), and one map per
    check whose quantity is a field (:data:`certify.report.figures.QUANTITY`) on a box with 2 or more coordinates."""
    from .figures import check_field

    results = {r.check.value: r for r in report.results}
    out = []
    for pic in pics:
        out += picture_problems(pic, results.get(pic.check))
    if report.network is not None and report.box.dim >= 2:
        for r in report.results:
            if check_field(r, report.norm) is not None and \
                    not any(p.kind == "map" and p.check == r.check.value for p in pics):
                out.append(f"{r.check.value}: no map of its quantity")
    return out


# ============================================================================================ a real browser
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "chrome-headless-shell")


def browser() -> str | None:
    """The path of a headless-capable Chromium on this machine, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1200, height: int = 2400,
               timeout: float = 120.0) -> Path | None:
    """A headless Chromium screenshot of an HTML file (the window's size, top of the page), or None without a
    browser. Raises RuntimeError when the browser fails."""
    exe = browser()
    if exe is None:
        return None
    png_path = Path(png_path)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}",
           f"--screenshot={png_path}", Path(html_path).resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not png_path.is_file():
        raise RuntimeError(f"{exe} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return png_path


def screenshot_problems(png: bytes, pictures: int) -> list[str]:
    """A browser's screenshot decodes, is not blank and shows the embedded pictures (colourful pixels: the maps'
    and plots' colours, which the page's text does not have) when the page has ``pictures`` of them."""
    try:
        rgb = decode(png)
    except Exception as exc:  # any decoding failure is the finding
        return [f"screenshot does not decode: {exc}"]
    out = [p for p in blank_problems(rgb, "screenshot") if "size" not in p]  # any window size will do
    p = rgb.astype(int)
    colourful = float(np.mean((p.max(axis=-1) - p.min(axis=-1)) > 50))
    if pictures and colourful < 0.003:
        out.append(f"screenshot: only {100 * colourful:.2f}% colourful pixels: the pictures were not drawn")
    return out
