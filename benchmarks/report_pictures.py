"""Render the HTML report of every benchmark-zoo model and check every picture in it.

    python benchmarks/report_pictures.py                        # every entry, pictures decoded and checked
    python benchmarks/report_pictures.py --only dcdc two_tank_plain --out /tmp/zoo-reports
    python benchmarks/report_pictures.py --docs-shot docs/report_dcdc.png --docs-entry dcdc_stability

Each zoo entry gets one report with every check that applies to it (dissipativity, contraction, weight_norm, gain,
invariance, equilibria); each closed loop one more with ``--metric auto`` (stability, dissipativity, contraction).
Every picture embedded in the HTML is decoded and checked (:mod:`certify.report.picture_checks`): size, not blank,
something drawn; the claims stored in each PNG equal the picture's; a map of every checked quantity; the colour under
a falsified check's witness that of its value, above the threshold, on a slice through it; no value above the proven
bound, and under a certified check no above-threshold colour; the bracket plot's time axis equal to the table's time;
on a proven-sub-box map (unknown checks of the sub-box search) only cells whose sound bound is at or below the limit
drawn as proven. When a headless Chromium is installed
(Debian package ``chromium-headless-shell``), each HTML file is also opened in it, and the screenshot decoded and
checked for the pictures; without one the script says so and checks the decoded images only.

The exit code is 1 when any picture has a problem, else 0. Outputs (HTML, screenshots) go to ``--out``.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_zoo import ENTRIES, ZOO  # noqa: E402  (the zoo's entries: one list for both scripts)

PLAIN_CHECKS = ("dissipativity", "contraction", "weight_norm", "gain", "invariance", "equilibria")
METRIC_CHECKS = ("stability", "dissipativity", "contraction")


@dataclass(frozen=True)
class Job:
    name: str
    model: Path
    box: Path
    checks: tuple[str, ...]
    metric: str | None = None


def jobs(only) -> list[Job]:
    out = []
    for e in ENTRIES:
        if only and e.name not in only and not any(o.startswith(e.name) for o in only):
            continue
        out.append(Job(e.name, ZOO / e.model, ZOO / e.box, PLAIN_CHECKS))
        if e.model.endswith(".system.yaml"):
            out.append(Job(f"{e.name}_stability", ZOO / e.model, ZOO / e.box, METRIC_CHECKS, "auto"))
    return [j for j in out if not only or j.name in only or any(j.name.startswith(o) for o in only)]


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def run_job(job: Job, out: Path, timeout: float, use_browser: bool) -> tuple[list[str], int, float, str, str]:
    """(problems, pictures, seconds, verdicts, screenshot state) of one job."""
    from certify.api import verify
    from certify.config import VerifyConfig
    from certify.report import picture_checks, render

    start = time.perf_counter()
    config = VerifyConfig(timeout=timeout, metric=job.metric) if job.metric else VerifyConfig(timeout=timeout)
    # paths relative to the working folder: the report (and a screenshot of it for docs/) names no local folder
    model, box = (Path(os.path.relpath(p)) for p in (job.model, job.box))
    report = verify(model, box, checks=list(job.checks), config=config)
    pics = render.pictures(report)
    html = render.to_html(report, pictures=pics)
    path = out / f"{job.name}.html"
    path.write_text(html, encoding="utf-8")
    problems = picture_checks.report_problems(report, pics)
    embedded = embedded_pngs(html)
    if sorted(embedded) != sorted(p.png for p in pics):
        problems.append(f"the HTML embeds {len(embedded)} images, not the {len(pics)} pictures checked")
    shot = "no browser"
    if use_browser and picture_checks.browser() is not None:
        png = picture_checks.screenshot(path, out / f"{job.name}.png")
        problems += picture_checks.screenshot_problems(png.read_bytes(), len(pics))
        shot = png.name
    verdicts = " ".join(f"{r.check.value}={r.verdict.value}" for r in report.results)
    return problems, len(pics), time.perf_counter() - start, verdicts, shot


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None,
                    help="entry names (a closed loop's metric report: NAME_stability)")
    ap.add_argument("--out", default="/tmp/certify-zoo-reports", help="folder for the HTML files and screenshots")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per report (shared among its checks)")
    ap.add_argument("--no-browser", action="store_true", help="decode the images only, no browser screenshot")
    ap.add_argument("--docs-shot", default=None, metavar="PNG", help="also write one report's screenshot here")
    ap.add_argument("--docs-entry", default="dcdc_stability", help="the report --docs-shot shows")
    args = ap.parse_args(argv)
    from certify.report import picture_checks

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    have_browser = picture_checks.browser()
    if args.no_browser:
        print("browser: not used (--no-browser): decoding the embedded images only")
    elif have_browser is None:
        print("browser: no headless Chromium found (apt-get install chromium-headless-shell): decoding the embedded "
              "images only")
    else:
        print(f"browser: {have_browser}")
    failed = 0
    print(f"{'report':34s} {'pictures':>8s} {'seconds':>8s}  {'screenshot':28s} verdicts")
    for job in jobs(args.only):
        problems, n, seconds, verdicts, shot = run_job(job, out, args.timeout, not args.no_browser)
        print(f"{job.name:34s} {n:8d} {seconds:8.1f}  {shot:28s} {verdicts}")
        for p in problems:
            print(f"    PROBLEM {p}")
        failed += bool(problems)
        if args.docs_shot and job.name == args.docs_entry:
            if have_browser is None or args.no_browser:
                print(f"    --docs-shot needs a browser; {args.docs_shot} not written")
            else:
                picture_checks.screenshot(out / f"{job.name}.html", args.docs_shot, width=1200, height=1700)
                print(f"    screenshot written to {args.docs_shot}")
    print(f"{failed} report(s) with problems" if failed else "every picture agrees with its report")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
