"""The ``certify`` command: ``certify MODEL --region BOX [options]``; the exit code is the verdict.

Exit codes: 0 every requested check certified, 1 any falsified, 2 otherwise unknown, 3 bad input or usage,
4 an internal error (a bug in certify: please report it with the command line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_CERTIFIED, EXIT_FALSIFIED, EXIT_UNKNOWN, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3, 4


class _UsageExit(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit 2, which means "unknown" here
        raise _UsageExit(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="certify",
        description="Prove or refute dissipativity, contraction and related properties of a trained network "
        "x+ = f(x) (or f(x, u)) over a box. Exit code: 0 certified, 1 falsified, 2 unknown, 3 bad input.",
    )
    p.add_argument("model", help="model file (.onnx) or closed-loop system file (.yaml with plant and controller)")
    p.add_argument("--region", required=True, metavar="BOX", help="region file (box.yaml)")
    p.add_argument(
        "--check",
        default="dissipativity",
        help="comma-separated checks: dissipativity, contraction, weight_norm, gain, invariance, equilibria "
        "(default: dissipativity)",
    )
    p.add_argument("--exact", action="store_true",
                   help="compute the exact supremum instead of stopping once the verdict is settled")
    p.add_argument("--norm", default=None, help="induced norm: 1, 2 or inf (default: the region file's, else 2)")
    p.add_argument("--margin", type=float, default=None, help="certify only when the bound is <= 1 - margin")
    p.add_argument("--method", choices=("auto", "exact", "bnb", "sdp", "interval", "sample"), default=None,
                   help="engine for the upper bound (default auto: the strongest that applies)")
    p.add_argument("--samples", type=int, default=None, help="points for falsification (default 100000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="sampling device (default auto)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per check (default 60)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the JSON report to PATH ('-' for stdout)")
    p.add_argument("--report", default=None, metavar="PATH",
                   help="write a report: PATH.html (with pictures) or PATH.md")
    p.add_argument("--junit", default=None, metavar="PATH", help="write JUnit XML (one test case per check)")
    p.add_argument("--unknown-as", choices=("failure", "skipped"), default="failure",
                   help="how an unknown check appears in JUnit (default failure)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (and the JSON with --json -)")
    return p


def _writable(option: str, path: str) -> None:
    """Refuse an output path that cannot be written, before any long computation starts."""
    from .errors import UsageError  # the command imports certify lazily: --help answers without loading engines

    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: folder {parent} does not exist")
    if Path(path).is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if not os.access(parent, os.W_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable")


def _progress(quiet: bool):
    """A progress display on stderr (rich), or None when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    tasks = {}

    def update(check, result):
        if result is None:
            tasks[check] = bar.add_task(f"checking {check.value}", total=1)
        else:
            bar.update(tasks[check], completed=1, description=f"{check.value}: {result.verdict.value}")

    return bar, update


def run(argv: list[str] | None = None) -> int:
    # deferred on purpose: the engines (and torch) load only once the arguments parse
    from .api import config_for_region, verify
    from .checks import parse_checks
    from .errors import CertifyError
    from .importers.region_file import load_region
    from .ir.numerics import parse_norm

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        checks = parse_checks(args.check)
        region = load_region(args.region)
        norm = parse_norm(args.norm, "--norm") if args.norm is not None else None
        config = config_for_region(
            region, norm=norm, margin=args.margin, samples=args.samples, seed=args.seed, device=args.device,
            timeout=args.timeout, exact=True if args.exact else None, method=args.method,
        )
        config.torch_device()
        if args.json not in (None, "-"):
            _writable("--json", args.json)
        if args.report is not None:
            if Path(args.report).suffix.lower() not in (".html", ".htm", ".md"):
                raise CertifyError(f"--report {args.report}: give a file ending in .html or .md")
            _writable("--report", args.report)
        if args.junit is not None:
            _writable("--junit", args.junit)
        if not Path(args.model).is_file():
            raise CertifyError(f"{args.model}: model file not found")
        bar, update = _progress(args.quiet)
        if bar is not None:
            with bar:
                report = verify(args.model, region, checks, config, progress=update)
        else:
            report = verify(args.model, region, checks, config)
    except _UsageExit as exc:
        print(f"certify: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CertifyError as exc:
        print(f"certify: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json == "-":
        print(report.to_json())
    elif not args.quiet:
        print(report.to_table())
    if args.json not in (None, "-"):
        Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
    if args.report is not None:
        if Path(args.report).suffix.lower() == ".md":
            Path(args.report).write_text(report.to_markdown(), encoding="utf-8")
        else:
            report.to_html(args.report)
    if args.junit is not None:
        report.to_junit(args.junit, unknown_as=args.unknown_as)
    from .certificate import Verdict

    return {Verdict.CERTIFIED: EXIT_CERTIFIED, Verdict.FALSIFIED: EXIT_FALSIFIED}.get(report.verdict, EXIT_UNKNOWN)


def main(argv: list[str] | None = None) -> int:
    try:
        code = run(argv)
    except BrokenPipeError:  # e.g. `certify ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_UNKNOWN
    except KeyboardInterrupt:
        print("certify: interrupted", file=sys.stderr)
        code = EXIT_UNKNOWN
    except SystemExit as exc:  # --help
        code = exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # a bug: one line, not a traceback; CERTIFY_DEBUG=1 shows it
        if os.environ.get("CERTIFY_DEBUG"):
            raise
        print(f"certify: internal error: {type(exc).__name__}: {exc} (set CERTIFY_DEBUG=1 for details; "
              "please report it)", file=sys.stderr)
        code = EXIT_INTERNAL
    sys.exit(code)


if __name__ == "__main__":
    main()
