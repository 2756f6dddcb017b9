"""``certify-proof check PROOF MODEL REGION``: re-check a proof file without certify's engines or any solver.

Imports: the standard library, numpy, and the modules it alone reads, :mod:`certify.proof.enclosure` (what a
node's bounds are), :mod:`certify.proof.rounding` (rigorous float64 and exact integer arithmetic),
:mod:`certify.proof.equilibria` (region maps in exact rationals) and :mod:`certify.proof.regions` (the region
files). No torch, onnx, scipy, solver, and none of certify's engines, bounds or checks (a test asserts this).

What is checked, in order (the first failing step is named, exit 1):

1. ``format``: the proof is ``certify-proof/1`` (JSON, or gzip-compressed JSON);
2. ``model``: the sha256 of MODEL (and of every file the proof lists beside it, e.g. a closed loop's controller)
   equals the proof's;
3. ``region``: REGION is read here (a small reader for the region format of DESIGN.md section 5: ``states`` /
   ``inputs`` with ``name: [lower, upper]``, or ``lower`` / ``upper`` lists, and ``norm`` / ``margin``; each bound
   rounded outward to float64, as certify reads it, so the box contains the decimal one), or a VNNLIB property
   (``.vnnlib``, :func:`read_vnnlib`: the input box rounded outward, the output bounds as exact constants), and its
   box equals the proof's box exactly; its state count binds the network, and its norm and margin bind each
   sup-norm claim (:func:`bind_region`: the claim is in the file's norm, :data:`DEFAULT_NORM` when it gives none,
   and a threshold check's bound is <= 1 - margin when it gives a margin); a VNNLIB file's output bounds bind an
   output_bounds claim (each side the file bounds, claimed at least as strictly);
4. ``network``: the IR weights (exact decimal strings of float64 values) have consistent shapes;
5. each check: its name is one of certify's checks, listed once, and its claim one that proves that check
   (:data:`BINDINGS`: a claim filed under another check's name proves that other check, not this one); the claim
   is re-proved from its evidence: ``product`` (Corollary 4: layer norms and slope bounds
   recomputed), ``tree`` (a tree of neuron splits and box halvings whose leaves cover the box: every leaf is
   closed by a bound recomputed here (:class:`certify.proof.enclosure.Evaluator`) or by Farkas multipliers that
   prove it empty), ``equilibria`` (a tree down to activation regions, each region's equilibrium solved in exact
   rationals: :mod:`certify.proof.equilibria`), ``stability`` (a contraction tree in the claim's norm or metric and
   either an invariance tree of the box or a ball around a point, tested in exact rationals: :func:`check_stability`),
   ``output_bounds`` (a tree whose leaves' output enclosures lie strictly within the claimed decimal bounds,
   compared exactly: :func:`check_output_bounds`).
   A check the proof lists as not proven is reported as such, never as valid.

What is trusted: that the proof's IR weights are the model's is established by certify's ONNX importer when the
proof is written (it checks the IR against onnxruntime); the checker binds the proof to the model file by its
sha256 only, it does not parse ONNX. ``--reimport`` adds that binding for a reviewer who accepts certify's importer
(:mod:`certify.proof.bind`, loaded only then: it needs onnx). The region's box is read from REGION by this module.

Exit codes: 0 every check of the proof proven and valid; 1 invalid (the failing step named); 2 valid, but some
checks are listed as not proven here; 3 bad input (an unreadable or malformed file: not JSON, a key given twice in
one object, the literals NaN / Infinity / -Infinity, nesting deeper than the JSON reader recurses; a missing file).
The proof is untrusted input: any entry of the wrong type or size is answered by one line naming it, never by a
traceback.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import equilibria
from .enclosure import (
    Evaluator,
    MetricData,
    Net,
    Node,
    Unsupported,
    farkas_certifies,
    make_act,
    product_bound,
)
from .regions import (  # noqa: F401  (re-exported: the checker's region readers)
    _NORM_WORDS,
    _NUMBER,
    DEFAULT_NORM,
    BadInput,
    RegionFile,
    _number,
    read_region,
    read_vnnlib,
)
from .rounding import EPS, TINY, exact_matrix, fraction_positive_definite, matmul_exact, sigma_lower

FORMAT = "certify-proof/1"
EXIT_VALID, EXIT_INVALID, EXIT_PARTIAL, EXIT_BAD_INPUT = 0, 1, 2, 3


class Invalid(ValueError):
    """The proof does not prove what it claims; ``step`` names the failing step (exit 1)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


# ============================================================================================ reading
class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    """json's object hook: a key given twice is refused (json.loads would keep the last one silently, so the
    file would say one thing to a reader and another to the checker)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


class _NonFiniteLiteral(ValueError):
    pass


def _refuse_constant(name: str):
    """json's parse_constant: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259), but json.loads reads
    them as floats by default; a proof holding one is refused where it is read."""
    raise _NonFiniteLiteral(f"the literal {name} is not JSON (a proof writes finite numbers only)")


def load_proof(path: str | Path) -> dict:
    """The proof object of a JSON file (gzip-compressed when it starts with the gzip magic bytes). Bad input: a key
    given twice in one object, the non-JSON literals NaN, Infinity and -Infinity, nesting deeper than json reads."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the proof ({exc.strerror or exc})") from None
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        proof = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except (_DuplicateKey, _NonFiniteLiteral) as exc:
        raise BadInput(f"{path}: {exc}") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise BadInput(f"{path}: not a proof file (nested deeper than this checker reads)") from None
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{path}: not a JSON proof file ({exc})") from None
    if not isinstance(proof, dict) or proof.get("format") != FORMAT:
        got = proof.get("format") if isinstance(proof, dict) else type(proof).__name__
        raise BadInput(f"{path}: not a {FORMAT} proof (format {got!r})")
    return proof


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return h.hexdigest()


def _floats(value, shape_name: str, ndim: int, step: str = "network", finite: bool = True) -> np.ndarray:
    """A float64 array (ndim dimensions, none empty; finite unless ``finite`` is false) from nested lists of decimal
    strings; Invalid (naming ``step`` and ``shape_name``) for anything else: numbers, ragged lists, a string where
    a list belongs."""
    try:
        if not isinstance(value, list):
            raise ValueError
        arr = np.array(value, dtype=object)
        if arr.ndim != ndim or 0 in arr.shape or not all(isinstance(v, str) for v in arr.ravel()):
            raise ValueError
        out = np.array([float(v) for v in arr.ravel()], dtype=np.float64).reshape(arr.shape)
    except (ValueError, TypeError, RecursionError):
        raise Invalid(step, f"{shape_name} must be a {ndim}-D array of decimal strings") from None
    if finite and not np.all(np.isfinite(out)):
        raise Invalid(step, f"{shape_name} has a non-finite entry")
    return out


def _is_int(v) -> bool:
    """A JSON integer (not a bool: True and False are ints to Python)."""
    return isinstance(v, int) and not isinstance(v, bool)


def parse_network(spec) -> Net:
    if not isinstance(spec, dict):
        raise Invalid("network", "missing")
    layers = spec.get("layers")
    if not isinstance(layers, list):
        raise Invalid("network", "'layers' must be a list")
    ws, bs, acts = [], [], []
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise Invalid("network", f"layer {k} must be an object")
        w, b = _floats(layer.get("weight"), f"layer {k} weight", 2), _floats(layer.get("bias"), f"layer {k} bias", 1)
        if b.size != w.shape[0] or (ws and w.shape[1] != ws[-1].shape[0]):
            raise Invalid("network", f"layer {k}: shapes do not chain ({w.shape}, bias {b.size})")
        act_spec = layer.get("activation")
        if not isinstance(act_spec, dict):
            raise Invalid("network", f"layer {k}: 'activation' must be an object")
        if act_spec.get("kind") == "prelu" and not isinstance(act_spec.get("slopes"), list):
            raise Invalid("network", f"layer {k} activation: prelu 'slopes' must be a list of decimal strings")
        try:
            acts.append(make_act(act_spec, w.shape[0]))
        except Unsupported:
            acts.append(None)  # refused only if a claim needs it
        except (ValueError, TypeError) as exc:
            raise Invalid("network", f"layer {k} activation: {_one_line(exc, 120)}") from None
        ws.append(w)
        bs.append(b)
    out_w, out_b = _floats(spec.get("out_weight"), "out_weight", 2), _floats(spec.get("out_bias"), "out_bias", 1)
    n_in = ws[0].shape[1] if ws else out_w.shape[1]
    if out_w.shape[1] != (ws[-1].shape[0] if ws else n_in) or out_b.size != out_w.shape[0]:
        raise Invalid("network", "the output layer's shapes do not chain")
    skip = None if spec.get("skip") is None else _floats(spec["skip"], "skip", 2)
    if skip is not None and skip.shape != (out_w.shape[0], n_in):
        raise Invalid("network", f"skip has shape {skip.shape}, expected {(out_w.shape[0], n_in)}")
    n_states = spec.get("n_states")
    if not _is_int(n_states) or not 0 < n_states <= n_in:
        raise Invalid("network", "n_states must be an integer in 1..n_in")
    return Net(tuple(ws), tuple(bs), tuple(acts), out_w, out_b, skip, n_states)


# ============================================================================================ the metric
def metric_factor(spec, n: int) -> MetricData:
    """The checker's data for ||x||_P = sqrt(x^T P x): with T, Q floats from the proof, proves
    (1 - d) T^T T <= P <= (1 + d) T^T T (exact integer tests) and ||T Q - I||_F <= e < 1/2 (exact), so that
    ||M||_P <= sqrt((1 + d) / (1 - d)) ||T M T^{-1}||_2 <= factor ||T M Q||_2 with factor =
    sqrt((1 + d) / (1 - d)) / (1 - e)."""
    if not isinstance(spec, dict):
        raise Invalid("metric", "the metric must be an object {P, T, Q}")
    p, t, q = (_floats(spec.get(k), f"metric {k}", 2, "metric") for k in "PTQ")
    if any(a.shape != (n, n) for a in (p, t, q)) or not np.array_equal(p, p.T):
        raise Invalid("metric", f"P, T and Q must be finite {n}x{n} matrices, P symmetric")
    pe, te, qe = exact_matrix(p), exact_matrix(t), exact_matrix(q)
    tq = matmul_exact(te, qe)
    e2 = sum((tq[i][j] - (1 if i == j else 0)) ** 2 for i in range(n) for j in range(n))
    if not e2 < Fraction(1, 4):  # decided exactly: float(e2) overflows when T Q is far from I
        raise Invalid("metric", "||T Q - I||_F >= 1/2: Q is not an inverse of T")
    e = math.sqrt(float(e2)) * (1 + 4 * EPS) + TINY
    if not e < 0.5:
        raise Invalid("metric", f"||T Q - I|| = {e:.3g}: Q is not an inverse of T")
    ptt = matmul_exact([list(col) for col in zip(*te)], te)
    for d in (Fraction(1, 2 ** 40), Fraction(1, 2 ** 30), Fraction(1, 2 ** 20)):
        below = [[pe[i][j] - (1 - d) * ptt[i][j] for j in range(n)] for i in range(n)]
        above = [[(1 + d) * ptt[i][j] - pe[i][j] for j in range(n)] for i in range(n)]
        if fraction_positive_definite(below) and fraction_positive_definite(above):
            factor = math.sqrt(float((1 + d) / (1 - d))) * (1 + 4 * EPS) / (1 - e) * (1 + 4 * EPS)
            return MetricData(t, q, factor)
    raise Invalid("metric", "T^T T is not within a relative 2^-20 of P")


# ============================================================================================ the tree
def walk(entries, ev: Evaluator, root: Node, close, step: str) -> dict:
    """Walk a pre-order tree (module docstring of :mod:`certify.proof.producer` for the entries); ``close(node,
    pos)`` settles a leaf closed by a bound. Returns the counts of each entry kind."""
    if not isinstance(entries, list):
        raise Invalid(step, "the tree must be a list of entries")
    net = ev.net
    stack = [root]
    counts = {"n": 0, "a": 0, "b": 0, "f": 0}
    for pos, e in enumerate(entries):
        where = f"entry {pos}"
        if not stack:
            raise Invalid(step, f"{where}: the tree is already complete (extra entries)")
        node = stack.pop()
        kind = e[0] if isinstance(e, list) and e else None
        if kind == "n" and len(e) == 3 and all(_is_int(v) for v in e[1:]):
            l, i = e[1], e[2]
            if not (0 <= l < net.L and 0 <= i < net.weights[l].shape[0]) or net.acts[l] is None or \
                    not net.acts[l].pwl:
                raise Invalid(step, f"{where}: no piecewise-linear neuron {_short(i)} in layer {_short(l)}")
            if node.fixed[l][i] >= 0:
                raise Invalid(step, f"{where}: neuron {i} of layer {l} is already fixed on this node")
            ev.prefix(node)
            if node.empty:  # the intervals prove the node empty already: so are its pieces
                stack.extend(node.empty_copy() for _ in range(net.acts[l].n_pieces))
            elif l > node.l_star:
                raise Invalid(step, f"{where}: split on layer {l} before layer {node.l_star} is determined")
            else:
                stack.extend(reversed(ev.split_neuron(node, l, i)))
        elif kind == "a" and len(e) == 2 and _is_int(e[1]):
            if not 0 <= e[1] < root.lo.size:
                raise Invalid(step, f"{where}: no coordinate {_short(e[1])}")
            stack.extend(reversed(node.split_axis(e[1])))
        elif kind == "b" and len(e) == 1:
            close(node, where)
        elif kind == "f" and len(e) == 2 and isinstance(e[1], list):
            a, b = ev.rows(node)
            idx, val = _farkas_pairs(e[1], a.shape[0], step, where)
            ev.prefix(node)
            if node.empty:
                pass  # the intervals prove the node empty already
            elif not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or not farkas_certifies(
                    a, b, node.lo, node.hi, idx, val):
                raise Invalid(step, f"{where}: the Farkas multipliers do not prove the node empty")
        else:
            raise Invalid(step, f"{where}: not a tree entry: {str(e)[:60]}")
        counts[kind] += 1
    if stack:
        raise Invalid(step, f"{len(stack)} node(s) of the tree have no entry (a dropped leaf or a truncated tree)")
    return counts


def _farkas_pairs(pairs, n_rows: int, step: str, where: str) -> tuple[list[int], list[float]]:
    """The rows (ints in 0..n_rows-1: the node's split rows) and multipliers (finite floats >= 0) of an "f" entry's
    [[row, y], ...]; Invalid for anything else (a row beyond the node's or beyond int64, a string, NaN)."""
    if not all(isinstance(p, list) and len(p) == 2 and _is_int(p[0]) and isinstance(p[1], (int, float))
               and not isinstance(p[1], bool) for p in pairs):
        raise Invalid(step, f"{where}: Farkas multipliers must be [row, value] pairs")
    idx = [p[0] for p in pairs]
    outside = next((k for k in idx if not 0 <= k < n_rows), None)  # Python ints: no overflow at any size
    if outside is not None:
        raise Invalid(step, f"{where}: the Farkas multipliers do not prove the node empty (they name row "
                      f"{_short(outside)}, the node has {n_rows} rows)")
    try:
        val = [float(p[1]) for p in pairs]
    except OverflowError:  # an integer beyond float64
        raise Invalid(step, f"{where}: a Farkas multiplier is not a finite float64 number") from None
    if not all(math.isfinite(v) and v >= 0 for v in val):
        raise Invalid(step, f"{where}: Farkas multipliers must be [row, finite value >= 0] pairs")
    return idx, val


# ============================================================================================ claims
def _box_of(proof) -> tuple[np.ndarray, np.ndarray]:
    region = proof.get("region")
    if not isinstance(region, dict):
        raise Invalid("region", "the proof has no region")
    lo, hi = (_floats(region.get(k), f"region {k}", 1, "region") for k in ("lower", "upper"))
    if lo.shape != hi.shape or np.any(lo > hi):
        raise Invalid("region", "the proof's box is not a box")
    return lo, hi


def _norm(text, step: str = "claim") -> float:
    if not isinstance(text, str) or text not in ("1", "2", "inf"):
        raise Invalid(step, f"the claim's norm must be '1', '2' or 'inf', got {_short(text)}")
    return math.inf if text == "inf" else float(text)


def _number_of(text, what: str, step: str = "claim") -> float:
    """A finite float from a claim's decimal string; Invalid naming ``step`` and ``what`` otherwise."""
    if not isinstance(text, str):
        raise Invalid(step, f"the claim's {what} must be a decimal string, got {_short(text)}")
    try:
        value = float(text)
    except ValueError:
        raise Invalid(step, f"the claim's {what} must be a decimal string, got {_short(text)}") from None
    if not math.isfinite(value):  # float() reads "nan" and "inf": a claim with them proves nothing
        raise Invalid(step, f"the claim's {what} must be finite, got {_short(text)}")
    return value


def _short(value, limit: int = 40) -> str:
    """repr(value) on one line and at most ``limit`` characters (a 4000-digit integer, a long list)."""
    return _one_line(repr(value), limit)


def check_sup_norm(claim, evidence, net: Net, lo, hi, step: str) -> str:
    quantity = claim.get("quantity")
    if quantity not in ("A*", "J"):
        raise Invalid(step, f"quantity must be 'A*' or 'J', got {quantity!r}")
    p, bound = _norm(claim.get("norm"), step), _number_of(claim.get("bound"), "bound", step)
    cols = claim.get("columns")
    if not isinstance(cols, int) or isinstance(cols, bool) or cols not in (net.n_states, net.n_in):
        raise Invalid(step, "columns must be n_states (the state block) or n_in (all inputs)")
    metric = None
    if claim.get("metric") is not None:
        if p != 2.0 or cols != net.n_states or net.out_w.shape[0] != net.n_states:
            raise Invalid(step, "a metric weights the 2-norm of the state block")
        metric = metric_factor(claim["metric"], cols)
    if any(a is None for a in net.acts):
        raise Invalid(step, "the network has an activation this checker does not compute")
    try:
        ev = Evaluator(net, quantity == "A*", cols, p, metric)
    except Unsupported as exc:
        raise Invalid(step, str(exc)) from None
    root = Node.root(net, lo, hi)
    kind = evidence.get("kind") if isinstance(evidence, dict) else None
    block = "" if cols == net.n_in else f"[:, :{cols}]"  # the state columns only: say so
    symbol = f"||{'T ' if metric else ''}{quantity}(x){block}{' T^-1' if metric else ''}||_{claim['norm']}"
    if kind == "product":
        value = product_bound(ev, root)
        if not value <= bound:
            raise Invalid(step, f"the Corollary 4 product {value!r} exceeds the claim {bound!r}")
        how = f"Corollary 4 product {value:.9g}"
    elif kind == "tree":
        def close(node, where):
            b = ev.bound(node, bound)
            if not b <= bound:
                raise Invalid(step, f"{where}: the node's bound {b!r} exceeds the claim {bound!r}")

        counts = walk(evidence.get("entries"), ev, root, close, step)
        how = (f"tree of {sum(counts.values())} nodes: {counts['n']} neuron splits, {counts['a']} box splits, "
               f"{counts['b']} bounded leaves, {counts['f']} Farkas leaves")
    else:
        raise Invalid(step, f"unknown evidence {kind!r}")
    text = f"sup {symbol} over the box <= {bound!r} ({how})"
    if claim.get("lower") is not None:
        text += "; " + _check_lower(claim["lower"], ev, lo, hi, step)
    return text


def _check_lower(spec, ev: Evaluator, lo, hi, step: str) -> str:
    """A lower bound on the supremum at a witness x: x in the box, every pre-activation away from its
    breakpoints (so its region has an interior), and the norm of its matrix proved >= the value."""
    if not isinstance(spec, dict):
        raise Invalid(step, "the claim's 'lower' must be an object {value, witness}")
    value = _number_of(spec.get("value"), "lower value", step)
    x = _floats(spec.get("witness"), "the witness", 1, step, finite=False)
    if x.shape != lo.shape or not np.all((x >= lo) & (x <= hi)):  # a NaN coordinate is in no box
        raise Invalid(step, "the witness lies outside the box")
    node = Node.root(ev.net, x, x)
    recs = ev.prefix(node)
    for l, (rec, act) in enumerate(zip(recs, ev.net.acts)):
        if act.pwl:
            plo, phi = act.piece_bounds(np.arange(rec.piece.size), np.maximum(rec.piece, 0))
            if np.any(rec.piece < 0) or not (np.all(rec.zl > plo) and np.all(rec.zu < phi)):  # NaN fails too
                raise Invalid(step, f"the witness has a pre-activation of layer {l} at a breakpoint")
    enc = ev.enclosure(node)
    got = -math.inf if enc is None else sigma_lower(enc[0], enc[1], ev.p)
    if not got >= value:
        raise Invalid(step, f"the witness's matrix has norm >= {got!r} only, not {value!r}")
    return f"attained >= {value!r} at the witness"


def check_invariance(claim, evidence, net: Net, lo, hi, step: str) -> str:
    bound = _number_of(claim.get("bound"), "bound", step)
    if not bound <= 0:  # the text says f(X) inside X: a violation below a positive bound does not show it
        raise Invalid(step, f"an invariance bound must be <= 0, got {bound!r}")
    n = net.n_states
    if net.out_w.shape[0] != n or any(a is None for a in net.acts):
        raise Invalid(step, "invariance needs a map from the states to the states with activations the checker "
                      "computes")
    ev = Evaluator(net, False, net.n_in, 1.0)
    upper, lower = hi[:n], lo[:n]

    def close(node, where):
        got = ev.output_range(node)
        if got is None:
            return
        fl, fu = got[0][:n], got[1][:n]
        a, b = fu - upper, lower - fl
        # one np.max over both sides: a NaN anywhere (an overflowed enclosure) gives NaN, which no bound exceeds
        v = float(np.max(np.concatenate([a + EPS * (np.abs(fu) + np.abs(upper)),
                                         b + EPS * (np.abs(fl) + np.abs(lower))]))) + TINY
        if not v < bound:
            raise Invalid(step, f"{where}: the node's violation bound {v!r} is not below {bound!r}")

    if not isinstance(evidence, dict) or evidence.get("kind") != "tree":
        raise Invalid(step, "invariance evidence must be a tree")
    counts = walk(evidence.get("entries"), ev, Node.root(net, lo, hi), close, step)
    return (f"f(X) inside X: max violation < {bound!r} (tree of {sum(counts.values())} nodes: {counts['a']} box "
            f"splits, {counts['n']} neuron splits, {counts['b']} bounded leaves, {counts['f']} Farkas leaves)")


EQUILIBRIUM_RADIUS_CAP = 1e-6  # the largest radius, relative to max(1, |points|), that an equilibria claim may use


def check_equilibria(claim, evidence, net: Net, lo, hi, step: str) -> str:
    """Every equilibrium in the box is one of the listed points (:mod:`certify.proof.equilibria`)."""
    radius = _number_of(claim.get("radius"), "radius", step)
    points = claim.get("points")
    n = net.n_in
    if net.out_w.shape[0] != n or net.n_states != n or any(a is None or not a.pwl for a in net.acts):
        raise Invalid(step, "equilibria need a piecewise-linear map from the states to the states (no inputs)")
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == n for p in points):
        raise Invalid(step, f"points must be a list of points with {n} coordinates")
    pts = [[_number_of(v, "point coordinate", step) for v in p] for p in points]
    if not radius >= 0:
        raise Invalid(step, "the radius must be >= 0")
    scale = max([1.0] + [abs(v) for p in pts for v in p])
    if not radius <= EQUILIBRIUM_RADIUS_CAP * scale:  # a radius as wide as the box would locate nothing
        raise Invalid(step, f"the radius {radius!r} exceeds {EQUILIBRIUM_RADIUS_CAP:g} relative to the points: it "
                      "does not locate the equilibria")
    if not isinstance(evidence, dict) or evidence.get("kind") != "tree":
        raise Invalid(step, "equilibria evidence must be a tree")
    ev = Evaluator(net, False, n, 1.0)
    maps = equilibria.RegionMaps(net)
    r = Fraction(radius)
    found = [False] * len(pts)

    def close(node, where):
        how, x = equilibria.settle_leaf(ev, maps, node)
        if how == "point":
            near = [k for k, p in enumerate(pts) if equilibria.near(x, p, r)]
            if not near:
                xs = ", ".join(f"{float(v):.9g}" for v in x)
                raise Invalid(step, f"{where}: its region holds the equilibrium [{xs}], which is not listed")
            for k in near:
                found[k] = True
        elif how == "open":
            raise Invalid(step, f"{where}: the leaf is not a single region and the intervals do not exclude an "
                          "equilibrium")
        elif how == "singular":
            raise Invalid(step, f"{where}: I - A is singular on its region (equilibria are not isolated)")

    counts = walk(evidence.get("entries"), ev, Node.root(net, lo, hi), close, step)
    missing = [k for k, ok in enumerate(found) if not ok]
    if missing:
        raise Invalid(step, f"listed point {missing[0]} is not within {radius!r} of an equilibrium of any region")
    return (f"every equilibrium in the box is within {radius!r} of one of the {len(pts)} listed point(s), and each "
            f"listed point within {radius!r} of one (tree of {sum(counts.values())} nodes: {counts['n']} neuron "
            f"splits, {counts['b']} settled leaves, {counts['f']} Farkas leaves)")


def residual_upper(ev: Evaluator, net: Net, center: np.ndarray, p: float, pe: list[list[Fraction]] | None,
                   step: str = "check stability") -> Fraction:
    """An exact rational D >= ||f(c) - c|| at the float64 point c: in the p-norm (p = 1, inf), or, with ``pe`` (P
    exact), D^2 >= (f(c) - c)^T P (f(c) - c). From the enclosure [fl, fu] of f over the box [c, c]: with
    u = max(|fl - c|, |fu - c|) (exact), ||v||_1 <= sum u, ||v||_inf <= max u and v^T P v <= u^T |P| u for every
    |v| <= u. Returns D (for p = 1, inf) or D^2 (with ``pe``)."""
    got = ev.output_range(Node.root(net, center, center))
    if got is None:
        raise Invalid(step, "the enclosure of f at the centre is empty")
    fl, fu = got[0][: center.size], got[1][: center.size]
    if not (np.all(np.isfinite(fl)) and np.all(np.isfinite(fu))):
        raise Invalid(step, "the enclosure of f at the centre is not finite")
    u = [max(abs(Fraction(float(a)) - Fraction(float(x))), abs(Fraction(float(b)) - Fraction(float(x))))
         for a, b, x in zip(fl, fu, center)]
    if pe is not None:
        return sum(u[i] * abs(pe[i][j]) * u[j] for i in range(len(u)) for j in range(len(u)))
    return sum(u) if p == 1.0 else max(u)


def check_stability(claim, evidence, net: Net, lo, hi, step: str) -> str:
    """One equilibrium attracting every trajectory from a start set: sup over the box of ||J(x)|| <= rate < 1 in the
    claim's norm (the 2-norm weighted by the metric P, or the plain 1-, 2- or inf-norm) makes f a contraction there
    (the box is convex); then either f(X) inside X (``start_set`` "box": by Banach, X holds one equilibrium and
    every trajectory from X converges to it), or the ball S = {||x - c|| <= r} of that norm lies inside the box and
    r (1 - rate) >= D >= ||f(c) - c|| (``start_set`` "ball"): ||f(x) - c|| <= rate ||x - c|| + D <= r on S, so S is
    invariant and Banach applies on S. The ball's extent along coordinate i is r (1- and inf-norm) or
    r sqrt((P^-1)_ii), tested in exact rationals, as are D and the last inequality."""
    n = net.n_states
    if net.n_in != n or net.out_w.shape[0] != n or any(a is None for a in net.acts):
        raise Invalid(step, "stability needs a map from the states to the states (no inputs) with activations the "
                      "checker computes")
    rate, p = _number_of(claim.get("rate"), "rate", step), _norm(claim.get("norm"), step)
    if not 0.0 <= rate < 1.0:
        raise Invalid(step, f"a contraction rate must be in [0, 1), got {rate!r}")
    if claim.get("metric") is not None and p != 2.0:
        raise Invalid(step, "a metric weights the 2-norm")
    if not isinstance(evidence, dict) or evidence.get("kind") != "stability":
        raise Invalid(step, "stability evidence must be an object of kind 'stability'")
    contraction = {"kind": "sup_norm", "quantity": "J", "columns": n, "norm": claim.get("norm"),
                   "bound": claim.get("rate"), "metric": claim.get("metric"), "lower": None}
    rated = check_sup_norm(contraction, evidence.get("contraction"), net, lo, hi, f"{step}: contraction")
    kind = claim.get("start_set")
    if kind == "box":
        held = check_invariance({"bound": "0"}, evidence.get("invariance"), net, lo, hi, f"{step}: invariance")
        return (f"the box holds one equilibrium and every trajectory from it converges at rate <= {rate!r}: "
                f"{rated}; {held}")
    if kind != "ball":
        raise Invalid(step, f"start_set must be 'box' or 'ball', got {_short(kind)}")
    center = _floats(claim.get("center"), "center", 1, step)
    radius = _number_of(claim.get("radius"), "radius", step)
    residual = _number_of(claim.get("residual"), "residual", step)
    if center.size != n or not radius > 0 or not residual >= 0:
        raise Invalid(step, f"the ball needs a centre of {n} coordinates, a radius > 0 and a residual >= 0")
    pe = None
    if p == 2.0:
        spec = claim.get("metric")
        pe = exact_matrix(np.eye(n) if spec is None else _floats(spec.get("P") if isinstance(spec, dict) else None,
                                                                 "metric P", 2, step))
    r, ce = Fraction(radius), [Fraction(float(v)) for v in center]
    reach = [r * r] * n
    if pe is not None:  # (P^-1)_ii = e_i^T P^-1 e_i, solved in exact rationals
        cols = [equilibria.solve_exact(pe, [Fraction(int(i == j)) for j in range(n)]) for i in range(n)]
        if any(c is None or not c[i] > 0 for i, c in enumerate(cols)):
            raise Invalid(step, "the metric P is not positive definite")
        reach = [r * r * c[i] for i, c in enumerate(cols)]
    for i in range(n):
        room = min(ce[i] - Fraction(float(lo[i])), Fraction(float(hi[i])) - ce[i])
        if room < 0 or room * room < reach[i]:
            raise Invalid(step, f"the ball of radius {radius!r} around the centre leaves the box along coordinate {i}")
    ev = Evaluator(net, False, n, p, None)
    d = residual_upper(ev, net, center, p, pe, step)
    given = Fraction(residual)
    if (given * given if pe is not None else given) < d:
        raise Invalid(step, f"the residual {residual!r} is below the checker's bound on ||f(c) - c||")
    if r * (1 - Fraction(rate)) < given:
        raise Invalid(step, f"radius (1 - rate) = {float(r * (1 - Fraction(rate)))!r} is below the residual "
                      f"{residual!r}: the ball is not proven invariant")
    where = "||x - c||_P" if p == 2.0 else f"||x - c||_{claim.get('norm')}"
    return (f"every trajectory from the ball {where} <= {radius!r} stays in it and converges at rate <= {rate!r} to "
            f"its one equilibrium: {rated}; the ball lies in the box and radius (1 - rate) >= residual {residual!r} "
            f">= ||f(c) - c||")


def _output_sides(claim, m: int, step: str) -> tuple[list, list]:
    """The claim's per-output bounds (lower, upper) as exact Decimals or None (that side free). Compared as Decimals,
    exactly, never as Fractions: 1e-999999999 as a Fraction would take a billion-digit integer."""
    sides = []
    for key in ("lower", "upper"):
        values = claim.get(key)
        if not isinstance(values, list) or len(values) != m:
            raise Invalid(step, f"{key} must list one bound (a decimal string, or null) per output ({m})")
        exact = []
        for v in values:
            if v is not None and not (isinstance(v, str) and _NUMBER.fullmatch(v.strip())):
                raise Invalid(step, f"{key}: {_short(v)} is not a decimal string")
            try:
                exact.append(None if v is None else Decimal(v.strip()))
            except ArithmeticError:  # an exponent beyond what Decimal holds (over 10^18 digits)
                raise Invalid(step, f"{key}: {_short(v)} is out of range") from None
        sides.append(exact)
    if all(v is None for v in sides[0] + sides[1]):
        raise Invalid(step, "the claim bounds no output")
    return sides[0], sides[1]


def check_output_bounds(claim, evidence, net: Net, lo, hi, step: str) -> str:
    """lower_i < f_i(x) < upper_i for every x in the box and every bounded side: a tree of box halvings (and neuron
    splits) whose every leaf's enclosure [fl, fu] of f has fu_i < upper_i and fl_i > lower_i, compared exactly."""
    m = net.out_w.shape[0]
    lower, upper = _output_sides(claim, m, step)
    if any(a is None for a in net.acts):
        raise Invalid(step, "the network has an activation this checker does not compute")
    ev = Evaluator(net, False, net.n_in, 1.0)

    def close(node, where):
        got = ev.output_range(node)
        if got is None:
            return
        fl, fu = got
        for i in range(m):
            if upper[i] is not None and not (math.isfinite(fu[i]) and Decimal(float(fu[i])) < upper[i]):
                raise Invalid(step, f"{where}: output {i} may reach {float(fu[i])!r}, not below its bound")
            if lower[i] is not None and not (math.isfinite(fl[i]) and Decimal(float(fl[i])) > lower[i]):
                raise Invalid(step, f"{where}: output {i} may reach {float(fl[i])!r}, not above its bound")

    if not isinstance(evidence, dict) or evidence.get("kind") != "tree":
        raise Invalid(step, "output_bounds evidence must be a tree")
    counts = walk(evidence.get("entries"), ev, Node.root(net, lo, hi), close, step)
    sides = sum(v is not None for v in lower + upper)
    return (f"every output stays strictly within its {sides} bound(s) over the box (tree of "
            f"{sum(counts.values())} nodes: {counts['a']} box splits, {counts['n']} neuron splits, {counts['b']} "
            f"bounded leaves, {counts['f']} Farkas leaves)")


CLAIMS = {"sup_norm": check_sup_norm, "invariance": check_invariance, "equilibria": check_equilibria,
          "stability": check_stability, "output_bounds": check_output_bounds}


# ============================================================================================ check names
@dataclass(frozen=True)
class Binding:
    """What a claim must be to prove the check it is filed under. ``claim``: its kind; for ``sup_norm``:
    ``quantity`` ("A*" or "J"), ``columns`` ("states": the state block, or all inputs, which bounds the state
    block too; "inputs": all inputs), ``threshold`` (the check is "sup < 1": bound <= 1, the level 1 - margin of a
    margin >= 0; :func:`bind_region` holds it to the region file's margin), ``metric`` (a weighted 2-norm may be
    used) and ``evidence`` (the kinds that prove it: the weight_norm check is the Corollary 4 product itself, a tree
    proves a sup bound, not the product)."""

    claim: str
    quantity: str | None = None
    columns: str | None = None
    threshold: bool = False
    metric: bool = True
    evidence: tuple[str, ...] = ("product", "tree")


#: the checks a proof may list as proven, with what their claim must be (certify's CheckName values; a test checks
#: the table against certify's checks and its proof producer)
BINDINGS = {
    "dissipativity": Binding("sup_norm", "A*", "states", threshold=True),
    "contraction": Binding("sup_norm", "J", "states", threshold=True),
    "weight_norm": Binding("sup_norm", "A*", "states", threshold=True, evidence=("product",)),
    "gain": Binding("sup_norm", "A*", "inputs", metric=False),
    "invariance": Binding("invariance"),
    "equilibria": Binding("equilibria"),
    "stability": Binding("stability", threshold=True),
    "output_bounds": Binding("output_bounds"),
}
#: the checks a proof may list, as not proven only: this checker does not re-prove them
NOT_PROVED_HERE = ("mean_square",)


def bind_claim(name: str, claim: dict, evidence, net: Net, step: str) -> None:
    """Invalid unless ``claim`` (its kind already known) can prove the check ``name`` (:data:`BINDINGS`): a claim
    filed under another check's name proves that other check, not this one."""
    rule = BINDINGS.get(name)
    if rule is None:
        raise Invalid(step, f"this checker does not re-prove {name!r}: it cannot be listed as proven")
    kind = claim.get("kind")
    if kind != rule.claim:
        raise Invalid(step, f"the {name} check needs a claim of kind {rule.claim!r}, not {_short(kind)}")
    if kind != "sup_norm":
        return
    quantity = claim.get("quantity")
    if quantity != rule.quantity:
        raise Invalid(step, f"the {name} claim bounds ||{rule.quantity}(x)||, not {_short(quantity)}")
    cols = claim.get("columns")
    if rule.columns == "inputs" and cols != net.n_in:
        raise Invalid(step, f"the {name} claim bounds the matrix of all {net.n_in} input columns, not "
                      f"{_short(cols)}")
    if rule.threshold:
        bound = _number_of(claim.get("bound"), "bound", step)
        if not bound <= 1.0:
            raise Invalid(step, f"the {name} claim is a bound <= 1 (1 - margin), got {bound!r}")
    if not rule.metric and claim.get("metric") is not None:
        raise Invalid(step, f"the {name} claim is in a plain p-norm: it takes no metric")
    got = evidence.get("kind") if isinstance(evidence, dict) else None
    if got not in rule.evidence:
        raise Invalid(step, f"the {name} claim is proved by {' or '.join(rule.evidence)} evidence, not "
                      f"{_short(got)}")


def bind_region(name: str, claim: dict, region: RegionFile, region_path, step: str) -> None:
    """Invalid unless the claim (already bound to ``name`` by :func:`bind_claim`) proves the check the region file
    asks for: a sup-norm or stability claim in the file's norm (:data:`DEFAULT_NORM` when it gives none, as
    certify's command does) and metric, and a threshold check's bound (a stability claim's rate) <= 1 - the file's
    margin when it gives one. Claims of the other kinds (invariance, equilibria) have no norm or threshold: the file
    asks nothing more of them."""
    rule = BINDINGS[name]
    if rule.claim == "output_bounds":
        _bind_outputs(claim, region, region_path, step)
        return
    if rule.claim not in ("sup_norm", "stability"):
        return
    if rule.metric:  # gain is in the plain norm whatever the file's metric (bind_claim refuses one)
        _bind_metric(name, claim, region, region_path, step)
    want = DEFAULT_NORM if region.norm is None else region.norm
    got = _norm(claim.get("norm"), step)
    if got != want:
        asks = (f"gives no norm (certify's default is the {_norm_name(want)})" if region.norm is None
                else f"asks for norm {_norm_label(want)}")
        raise Invalid(step, f"the region file {region_path} {asks}; the {name} proof claims the {_norm_name(got)}")
    if rule.threshold and region.margin is not None:
        level = 1.0 - region.margin  # the producer writes repr(1.0 - margin): the same float64
        key = "rate" if rule.claim == "stability" else "bound"
        bound = _number_of(claim.get(key), key, step)
        if not bound <= level:
            raise Invalid(step, f"the region file {region_path} asks for margin {region.margin!r}: the {name} claim "
                          f"must be a bound <= 1 - margin = {level!r}, got {bound!r}")


def _bind_outputs(claim: dict, region: RegionFile, region_path, step: str) -> None:
    """Invalid unless the region file (a VNNLIB property) states an output property and the claim bounds every side
    it bounds at least as strictly (an upper bound <= the file's, a lower bound >= it; exact comparisons)."""
    if region.outputs is None:
        raise Invalid(step, f"the region file {region_path} states no output property (give the .vnnlib file)")
    above, below = region.outputs
    lower, upper = _output_sides(claim, len(above), step)
    for i, (a, b) in enumerate(zip(above, below)):
        if a is not None and (lower[i] is None or lower[i] < a):
            raise Invalid(step, f"{region_path} asks Y_{i} > {a}; the proof does not claim that")
        if b is not None and (upper[i] is None or upper[i] > b):
            raise Invalid(step, f"{region_path} asks Y_{i} < {b}; the proof does not claim that")


def _bind_metric(name: str, claim: dict, region: RegionFile, region_path, step: str) -> None:
    """Invalid unless the claim's metric is the one the region file asks for: none when it gives none (or
    ``identity``, or P = I), any when it says ``auto`` (certify finds one), else P exactly (as certify symmetrises
    it, (P + P^T) / 2 in float64)."""
    asked = region.metric
    if asked == "auto":
        return
    spec = claim.get("metric")
    p = None
    if asked is not None:
        try:
            a = np.array(asked, dtype=np.float64)
        except ValueError:
            raise BadInput(f"{region_path}: metric: P must be a square matrix of numbers") from None
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise BadInput(f"{region_path}: metric: P must be a square matrix of numbers")
        p = 0.5 * (a + a.T)
        if np.array_equal(p, np.eye(p.shape[0])):
            p = None
    if p is None:
        if spec is not None:
            raise Invalid(step, f"the region file {region_path} asks for no metric; the {name} proof claims a bound "
                          "in a weighted norm")
        return
    if spec is None:
        raise Invalid(step, f"the region file {region_path} asks for the metric P it gives; the {name} proof claims "
                      "a bound in the plain norm")
    got = _floats(spec.get("P") if isinstance(spec, dict) else None, "metric P", 2, step)
    if got.shape != p.shape or not np.array_equal(got, p):
        raise Invalid(step, f"the region file {region_path} gives the metric P; the {name} proof's P is another")


def _norm_label(p: float) -> str:
    return "inf" if math.isinf(p) else str(int(p))


def _norm_name(p: float) -> str:
    return f"{_norm_label(p)}-norm"


# ============================================================================================ the whole proof
def check_files(proof_path, model_path, region_path, out=print, reimport: bool = False) -> int:
    """Check a proof file against MODEL and REGION, writing one line per step to ``out``; the exit code.
    ``reimport``: also bind the proof's IR to MODEL by certify's importer (:mod:`certify.proof.bind`)."""
    try:
        proof = load_proof(proof_path)
        return check_proof(proof, model_path, region_path, out, reimport)
    except BadInput as exc:
        out(f"certify-proof: error: {exc}")
        return EXIT_BAD_INPUT


def check_proof(proof: dict, model_path=None, region_path=None, out=print, reimport: bool = False) -> int:
    """Check a loaded proof; ``model_path``/``region_path`` None skip those steps (Python use only: the command
    always checks both). Overflow to inf and NaN in the float64 enclosures are decided as such (an infinite
    enclosure proves nothing): numpy's warnings about them are silenced here, for the command and for Python use."""
    try:
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                return _check_proof(proof, model_path, region_path, out, reimport)
        except (Invalid, BadInput):
            raise
        except (ArithmeticError, ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
            # a last guard for the untrusted file: an entry this checker did not anticipate is refused, not a
            # traceback (it is a checker bug worth reporting: the tests look for this line)
            raise Invalid("proof", f"{UNEXPECTED} ({type(exc).__name__}: {_one_line(exc)})") from None
    except Invalid as exc:
        out(f"invalid: {exc}")
        return EXIT_INVALID
    except BadInput as exc:
        out(f"certify-proof: error: {exc}")
        return EXIT_BAD_INPUT


UNEXPECTED = "the checker could not evaluate an entry of the proof; please report"


def _one_line(text, limit: int = 200) -> str:
    """``text`` on one line (whitespace runs collapsed), at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _check_proof(proof, model_path, region_path, out, reimport: bool) -> int:
    """:func:`check_proof` without its guard; raises Invalid or BadInput."""
    if not isinstance(proof, dict) or proof.get("format") != FORMAT:
        raise Invalid("format", f"not a {FORMAT} proof")
    lo, hi = _box_of(proof)
    region = None if region_path is None else (read_vnnlib(region_path) if str(region_path).lower().endswith(
        ".vnnlib") else read_region(region_path))
    # the state count that binds the network: the region file's when it names one, never only the proof's
    file_states = None if region is None else region.n_states
    if model_path is not None:
        _check_model(proof, Path(model_path))
        out(f"model: {model_path}: sha256 matches")
        if reimport:  # deferred on purpose: certify's importer (onnx) only when asked for
            from .bind import network_mismatch

            try:
                why = network_mismatch(proof, model_path, file_states)
            except ImportError as exc:  # onnx (or onnxruntime) is not installed here
                raise BadInput(f"--reimport needs certify's ONNX importer: {_one_line(exc, 120)}") from None
            if why:
                raise Invalid("network", why)
            out(f"network: {model_path}: re-imported by certify's importer, the IR equals the proof's")
    if region is not None:
        _check_region(proof, region_path, region, lo, hi)
        out(f"region: {region_path}: the box matches ({lo.size} coordinates)")
    net = parse_network(proof.get("network"))
    if net.n_in != lo.size:
        raise Invalid("network", f"the network takes {net.n_in} inputs but the box has {lo.size}")
    region_states = proof["region"].get("n_states")
    if region_states is not None and not (_is_int(region_states) and region_states == net.n_states):
        raise Invalid("network", f"the network has {net.n_states} states but the proof's region "
                      f"{_short(region_states)}")
    if file_states is not None and file_states != net.n_states:
        raise Invalid("network", f"the network has {net.n_states} states but {region_path} lists {file_states}")
    checks = proof.get("checks")
    if not isinstance(checks, list) or not checks:
        raise Invalid("checks", "the proof lists no checks")
    missing = 0
    seen: set[str] = set()
    for k, entry in enumerate(checks):
        name = entry.get("check") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise Invalid("checks", f"check {k} has no name")
        if name not in BINDINGS and name not in NOT_PROVED_HERE:
            raise Invalid("checks", f"check {k}: unknown check name {_one_line(repr(name), 60)}")
        if name in seen:
            raise Invalid("checks", f"check {k}: {name} is listed twice")
        seen.add(name)
        step = f"check {name}"
        if entry.get("status") == "not_proven":
            missing += 1
            out(f"{name}: not proven here: {_one_line(entry.get('reason', ''), 1000)}")
            continue
        if entry.get("status") != "proven":
            raise Invalid(step, "status must be 'proven' or 'not_proven'")
        claim = entry.get("claim")
        kind = claim.get("kind") if isinstance(claim, dict) else None
        if not isinstance(kind, str) or kind not in CLAIMS:
            raise Invalid(step, f"the claim must be an object whose kind is one of {', '.join(CLAIMS)}, got "
                          f"{_short(kind)}")
        bind_claim(name, claim, entry.get("evidence"), net, step)
        if region is not None:
            bind_region(name, claim, region, region_path, step)
        t0 = time.perf_counter()
        text = CLAIMS[kind](claim, entry.get("evidence"), net, lo, hi, step)
        out(f"{name}: valid: {text} [{time.perf_counter() - t0:.2f} s]")
    if missing:
        out(f"result: valid, but {missing} of {len(checks)} check(s) not proven here")
        return EXIT_PARTIAL
    out(f"result: valid ({len(checks)} check(s) proven)")
    return EXIT_VALID


def _check_model(proof, model: Path) -> None:
    spec = proof.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("sha256"), str):
        raise Invalid("model", "the proof records no model sha256")
    if not spec["sha256"]:
        raise Invalid("model", "the proof was written for an in-memory network; it is bound to no model file")
    if not model.is_file():
        raise BadInput(f"{model}: model file not found")
    if sha256_of(model) != spec["sha256"]:
        raise Invalid("model", f"{model}: its sha256 differs from the proof's (a proof for another model)")
    files = spec.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise Invalid("model", "'files' must be a list of {path, sha256} objects")
    for extra in files:
        path = model.parent / extra["path"]
        if not path.is_file():
            raise BadInput(f"{path}: file named by the proof not found")
        if sha256_of(path) != extra.get("sha256"):
            raise Invalid("model", f"{path}: its sha256 differs from the proof's")


def _check_region(proof, region_path, region: RegionFile, lo, hi) -> None:
    """The region file (read: ``region``) against the proof's box and states."""
    lower, upper, n_states = region.lower, region.upper, region.n_states
    if len(lower) != lo.size or len(upper) != hi.size:
        raise Invalid("region", f"{region_path} has {len(lower)} coordinates, the proof's box {lo.size}")
    if not (np.array_equal(np.array(lower), lo) and np.array_equal(np.array(upper), hi)):
        k = int(np.flatnonzero((np.array(lower) != lo) | (np.array(upper) != hi))[0])
        raise Invalid("region", f"{region_path}: coordinate {k} is [{lower[k]!r}, {upper[k]!r}] but the proof's box "
                      f"has [{float(lo[k])!r}, {float(hi[k])!r}]")
    expected = proof["region"].get("n_states")
    if n_states is not None and expected is not None and n_states != expected:
        raise Invalid("region", f"{region_path} lists {n_states} states, the proof {expected}")


# ============================================================================================ the command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="certify-proof", description="Re-check a certify proof file without "
                                     "certify's engines or any solver.", epilog="exit codes: 0 valid; 1 invalid "
                                     "(the failing step is named); 2 valid, but some checks are not proven here; "
                                     "3 bad input")
    sub = parser.add_subparsers(dest="command", required=True)
    chk = sub.add_parser("check", help="check PROOF against MODEL and REGION")
    chk.add_argument("proof", help="the proof file (JSON, or JSON.gz)")
    chk.add_argument("model", help="the model file the proof was written for")
    chk.add_argument("region", help="the region file (box.yaml, or the VNNLIB property prop.vnnlib)")
    chk.add_argument("--quiet", action="store_true", help="print only the result line")
    chk.add_argument("--reimport", action="store_true",
                     help="also import MODEL with certify's importer (needs onnx) and require its IR to equal the "
                     "proof's weights exactly; without it the proof is bound to MODEL by its sha256")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code not in (0, None) else EXIT_VALID
    lines = []

    def out(line: str) -> None:
        lines.append(line)
        if not args.quiet or line.startswith(("result:", "invalid:", "certify-proof:")):
            print(line, file=sys.stderr if line.startswith("certify-proof:") else sys.stdout)

    return check_files(args.proof, args.model, args.region, out, args.reimport)


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
