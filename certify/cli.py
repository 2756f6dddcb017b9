"""The ``certify`` command: ``certify MODEL --region BOX [options]``; the exit code is the verdict.

Exit codes (:data:`EXIT_CODES`): 0 every requested check certified, 1 any falsified, 2 otherwise unknown, 3 bad
input or usage (or an output that cannot be written), 4 an internal error (a bug in certify), 130 interrupted by
SIGINT, 143 terminated by SIGTERM.

Startup is cheap on purpose: this module imports only the standard library and :mod:`certify.errors` at the top.
The arguments, the model path, the region file and the output paths are all checked before the engines (and torch)
are imported, so ``--help``, ``--version`` and bad input answer at once. Output files are written only at the end,
all at once and atomically (:mod:`certify.report.output`): an error, a full disk or a signal never leaves a
truncated file and never destroys an existing one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from pathlib import Path

from .certificate import parse_checks
from .errors import CertifyError

EXIT_CERTIFIED, EXIT_FALSIFIED, EXIT_UNKNOWN, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130 and 143, as shells report them

EXIT_CODES = """\
exit codes:
  0    every check certified
  1    some check falsified (a replayed counterexample exists)
  2    otherwise unknown (the bracket and the reason are printed)
  3    bad input or usage, or an output file that cannot be written (one line on stderr naming the file,
       key, option or ONNX node)
  4    internal error: a bug in certify (one line; CERTIFY_DEBUG=1 shows the traceback; please report it)
  130  interrupted (SIGINT, Ctrl-C): one line on stderr; no output file written or changed
  143  terminated (SIGTERM): the same

Output files (--json, --report, --junit) are written at the end, atomically: never half-written, never one of
the inputs or another output.
"""

_REPORT_SUFFIXES = (".html", ".htm", ".md")


class _UsageExit(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM, raised in the main thread by the handler :func:`main` installs (a BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` in an engine swallows it)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit 2, which means "unknown" here
        raise _UsageExit(message)


def _version() -> str:
    from . import __version__

    return f"certify {__version__}"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="certify",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Prove or refute dissipativity, contraction and related properties of a trained network "
        "x+ = f(x) (or f(x, u)) over a box.\nThe exit code is the verdict (see the table below).",
        epilog=EXIT_CODES,
    )
    p.add_argument("model", help="model file (.onnx) or closed-loop system file (.yaml with plant and controller)")
    p.add_argument("--region", required=True, metavar="BOX",
                   help="region file (box.yaml), or a VNNLIB property (prop.vnnlib: input box and output bounds)")
    p.add_argument(
        "--check",
        default=None,
        help="comma-separated checks: dissipativity, contraction, weight_norm, gain, invariance, equilibria, "
        "stability, output_bounds, mean_square (default: dissipativity; output_bounds for a .vnnlib region)",
    )
    p.add_argument("--exact", action="store_true",
                   help="compute the exact supremum instead of stopping once the verdict is settled")
    p.add_argument("--norm", default=None, help="induced norm: 1, 2 or inf (default: the region file's, else 2)")
    p.add_argument("--metric", default=None, metavar="identity|auto|FILE.yaml",
                   help="the weighted 2-norm ||x||_P = sqrt(x^T P x) on the states: identity (the Euclidean norm), "
                   "auto (search for a P), or a file with the matrix P (default: the region file's, else identity)")
    p.add_argument("--margin", type=float, default=None, help="certify only when the bound is <= 1 - margin")
    p.add_argument("--method", choices=("auto", "exact", "bnb", "sdp", "interval", "sample"), default=None,
                   help="engine for the upper bound (default auto: the strongest that applies)")
    p.add_argument("--samples", type=int, default=None, help="points for falsification (default 100000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="sampling device (default auto)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds for the whole run, shared among the checks (default 60)")
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="at most N nodes (regions or sub-boxes) per search: a deterministic limit, so that a "
                   "verdict does not depend on the machine's speed (default: no limit but the time)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes for the searches (default: the number of cores; 1: serial); the "
                   "verdict does not depend on it")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run the searches on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786; "
                   "needs the extra 'distributed'); --workers is then ignored")
    p.add_argument("--json", default=None, metavar="PATH", help="write the JSON report to PATH ('-' for stdout)")
    p.add_argument("--report", default=None, metavar="PATH",
                   help="write a report: PATH.html (with pictures) or PATH.md")
    p.add_argument("--junit", default=None, metavar="PATH", help="write JUnit XML (one test case per check)")
    p.add_argument("--proof", default=None, metavar="PATH",
                   help="write a proof file for every certified check (PATH.gz: gzip); re-check it with "
                   "`certify-proof check PATH MODEL BOX`")
    p.add_argument("--unknown-as", choices=("failure", "skipped"), default="failure",
                   help="how an unknown check appears in JUnit (default failure)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (and the JSON with --json -)")
    p.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    return p


# ============================================================================================ argument checks
def _model_file(path: str) -> None:
    from .importers import check_model_path  # light: the importers package loads onnx and torch only on use

    check_model_path(path)
    p = Path(path)  # a system file (.yaml), which check_model_path leaves to its reader, is checked here too
    if not p.exists():
        raise CertifyError(f"{path}: model file not found")
    if not p.is_file():
        raise CertifyError(f"{path}: the model is not a regular file; give an .onnx file or a system file (.yaml)")


def _outputs(args) -> list[tuple[str, str]]:
    """(option, path) of every output file asked for (``--json -`` is stdout, not a file)."""
    out = []
    if args.json not in (None, "-"):
        out.append(("--json", args.json))
    if args.report is not None:
        if Path(args.report.rstrip("/" + (os.altsep or ""))).suffix.lower() not in _REPORT_SUFFIXES:
            raise CertifyError(f"--report {args.report}: give a file ending in .html or .md")
        out.append(("--report", args.report))
    if args.junit is not None:
        out.append(("--junit", args.junit))
    if args.proof is not None:
        out.append(("--proof", args.proof))
    return out


def _controller_of(model: str) -> str | None:
    """The controller ONNX file a system file names (resolved as the importer resolves it), or None when ``model``
    is not a system file or does not name one readably (the importer then reports what is wrong)."""
    from .errors import SystemFileError
    from .importers.system_file import is_system_file
    from .importers.yaml_file import read_yaml

    if not is_system_file(model):
        return None
    try:
        data = read_yaml(model, SystemFileError, "system file")
    except CertifyError:
        return None
    ctrl = data.get("controller") if isinstance(data, dict) else None
    name = ctrl.get("onnx") if isinstance(ctrl, dict) else None
    if not isinstance(name, str) or not name.strip():
        return None
    p = Path(name)
    return str(p if p.is_absolute() else Path(model).resolve().parent / p)


def _refuse_clashes(inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> None:
    """An output path that names an input or another output would destroy data: refuse it (exit 3)."""
    from .report.output import OutputError, same_file

    for i, (option, path) in enumerate(outputs):
        for what, source in inputs:
            if same_file(path, source):
                raise OutputError(f"{option} {path}: is the {what} ({source}); writing it would destroy the input; "
                                  "give another path")
        for other, other_path in outputs[:i]:
            if same_file(path, other_path):
                raise OutputError(f"{option} {path}: is also the {other} output; give each output its own path")


def _config(region, args):
    """The run's VerifyConfig: the options given, else the region file's norm, margin and metric, else the defaults
    (:meth:`certify.importers.region_file.Region.config`)."""
    from .importers.region_file import load_metric
    from .ir.numerics import parse_norm

    metric = None
    if args.metric is not None:
        key = args.metric.strip().lower()
        metric = "identity" if key == "identity" else "auto" if key == "auto" else load_metric(
            args.metric, region.box.n_states)
    return region.config(norm=parse_norm(args.norm, "--norm") if args.norm is not None else None,
                         margin=args.margin, samples=args.samples, seed=args.seed, device=args.device,
                         timeout=args.timeout, exact=True if args.exact else None, method=args.method,
                         budget=args.budget, metric=metric,
                         workers=args.workers if args.workers is not None else os.cpu_count() or 1,
                         cluster=args.cluster)


# ============================================================================================ the run
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


@contextlib.contextmanager
def _terminal_warnings():
    """No floating-point RuntimeWarnings on the user's terminal: the analyses handle overflow and NaN themselves
    (a bound that overflows is no bound; the verdict says so). CERTIFY_DEBUG=1 keeps them. A search whose workers
    were lost (:class:`~certify.engines.parallel.WorkerWarning`) prints one ``certify: note:`` line on stderr."""
    from .engines.parallel import WorkerWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, WorkerWarning):
                print(f"certify: note: {message}", file=sys.stderr)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show  # restored by catch_warnings
        warnings.simplefilter("always", WorkerWarning)
        if os.environ.get("CERTIFY_DEBUG"):
            yield
            return
        import numpy as np

        with np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            yield


def _rendered(report, args, outputs) -> list[tuple[str, str]]:
    """(path, text) of every output file, rendered before any of them is written."""
    files = []
    for option, path in outputs:
        if option == "--json":
            files.append((path, report.to_json() + "\n"))
        elif option == "--report":
            md = Path(path).suffix.lower() == ".md"
            files.append((path, report.to_markdown() if md else report.to_html()))
        elif option == "--proof":  # deferred on purpose: the proof search runs only when a proof is asked for
            from .proof.producer import ProofOptions, build_proof, proof_bytes

            options = ProofOptions(timeout=args.timeout if args.timeout is not None else ProofOptions.timeout)
            files.append((path, proof_bytes(build_proof(report, options), path)))
        else:
            files.append((path, report.to_junit(unknown_as=args.unknown_as)))
    return files


@contextlib.contextmanager
def hold_signals():
    """SIGINT and SIGTERM wait while the output files are written and moved into place (a short step), so that an
    interrupt never leaves some outputs of this run beside older others. One that comes meanwhile is taken right
    after (exit 130 or 143, saying that the outputs were written).

    The Python-level handlers are swapped for one that only takes note (Python runs signal handlers in the main
    thread whichever thread the signal reached, so this holds with torch's and the solvers' threads running; a
    signal mask would not). A signal that was being ignored stays ignored."""
    came: list[int] = []

    def note(signum, frame):
        came.append(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, note)
        except ValueError:  # not the main thread: signals are not ours to handle
            pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if came:
        stop = Terminated() if signal.SIGTERM in came else KeyboardInterrupt()
        stop.after_outputs = True
        raise stop


def _metric_key(metric):
    """A comparable form of a config's metric: None (the plain norm), "auto", or P's entries."""
    if metric is None or metric == "identity" or getattr(metric, "is_identity", False):
        return None
    return metric if isinstance(metric, str) else tuple(map(float, metric.p.ravel()))


def _note_proof_overrides(region, config, region_path) -> None:
    """A note on stderr when --norm, --margin (a smaller one) or --metric make the run's check another than the
    region file's: ``certify-proof check`` holds a proof to the file's own norm, margin and metric, so it refuses
    such claims against that file."""
    own = region.config()
    differ = []
    if config.norm != own.norm:
        differ.append("--norm")
    if config.margin < (region.margin or 0.0):  # the checker's level: 1 - the file's margin (0 when it gives none);
        differ.append("--margin")  # a larger margin proves more, so the file's check holds too
    if own.metric != "auto" and _metric_key(config.metric) != _metric_key(own.metric):
        differ.append("--metric")
    if differ:
        print(f"certify: note: {', '.join(differ)} ask for another check than {region_path}; certify-proof check "
              "holds a proof to the region file's own norm, margin and metric and refuses such claims against it",
              file=sys.stderr)


def _run(args) -> int:
    checks = parse_checks(args.check) if args.check is not None else None
    _model_file(args.model)
    outputs = _outputs(args)
    from .importers.region_file import load_region

    region = load_region(args.region)
    config = _config(region, args)
    if args.proof is not None:
        _note_proof_overrides(region, config, args.region)
    inputs = [("model file", args.model), ("region file", args.region)]
    controller = _controller_of(args.model)
    if controller is not None:
        inputs.append(("controller named by the system file", controller))
    _refuse_clashes(inputs, outputs)
    from .report.output import check_output_path, write_all_atomic

    for option, path in outputs:
        check_output_path(option, path)
    # deferred on purpose: the engines (and torch) load only once the arguments, the region and the outputs are valid
    from .api import verify
    from .certificate import Verdict

    config.torch_device()
    with _terminal_warnings():
        bar, update = _progress(args.quiet)
        if bar is not None:
            with bar:
                report = verify(args.model, region, checks, config, progress=update)
        else:
            report = verify(args.model, region, checks, config)
        files = _rendered(report, args, outputs)
    if args.json == "-":
        print(report.to_json())
    elif not args.quiet:
        print(report.to_table())
    sys.stdout.flush()
    if files:
        with hold_signals():
            write_all_atomic(files)
    return {Verdict.CERTIFIED: EXIT_CERTIFIED, Verdict.FALSIFIED: EXIT_FALSIFIED}.get(report.verdict, EXIT_UNKNOWN)


def run(argv: list[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``) and return the exit code; ``--help`` and
    ``--version`` raise SystemExit(0) as argparse does."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _run(args)
    except (_UsageExit, CertifyError) as exc:
        message = " ".join(str(exc).split())  # one line
        print(f"certify: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _on_sigterm(signum, frame):
    raise Terminated()


def _outputs_note(exc: BaseException) -> str:
    if getattr(exc, "after_outputs", False):
        return "it came after the output files were written in full"
    return "no output file was written or changed"


def _stop(message: str, code: int):
    """Leave at once after a signal: worker threads (MILP sides) and solver processes are not waited for."""
    print(f"certify: {message}", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: keep the default
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = run(argv)
    except BrokenPipeError:  # e.g. `certify ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_UNKNOWN
    except KeyboardInterrupt as exc:
        _stop(f"interrupted (SIGINT); {_outputs_note(exc)}", EXIT_SIGINT)
    except Terminated as exc:
        _stop(f"terminated (SIGTERM); {_outputs_note(exc)}", EXIT_SIGTERM)
    except SystemExit as exc:  # --help, --version
        code = exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # a bug: one line, not a traceback; CERTIFY_DEBUG=1 shows it
        if os.environ.get("CERTIFY_DEBUG"):
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"certify: internal error: {message} (set CERTIFY_DEBUG=1 for details; please report it)",
              file=sys.stderr)
        code = EXIT_INTERNAL
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous)
    sys.exit(code)


if __name__ == "__main__":
    main()
