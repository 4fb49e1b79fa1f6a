"""Execute the chapters listed in _toc.yml (papermill, one folder each under DIR), collect their metrics and
provenance into DIR/results.json and write DIR/results.md: each published claim with its source, the measured
value and a verdict (holds, does not hold, not comparable and why, or not measured); the sanity checks, which
hold by construction, apart from the verdicts; and the published figures that are not judged, with the reason
for each. A failed chapter is recorded (its executed notebook kept) and the others run; the exit code is then
1. Running again skips the chapters already done at the same commit and scale.
"""
from __future__ import annotations

import sys

from .parsers import documented_parser


EPILOG = """\
scales:
  smoke  synthetic data, CPU-sized runs (what CI runs; minutes on a laptop)
  cpu    the real-data edition: each chapter's Fashion-MNIST experiment on the real dataset, saved
         as its record under book/results/ (chapters without one run as smoke); Fashion-MNIST
         is real data, so its claims are judged at this scale
  full   the presets' recipes on the real datasets, 3 seeds per judged accuracy: a GPU job (see the
         book's reproduction page)

examples:
  cifar-lab reproduce --scale smoke --out runs/reproduce-smoke
  cifar-lab reproduce --scale smoke --only 01 02 --out runs/reproduce-smoke
  cifar-lab reproduce --scale full --out runs/reproduce
  cifar-lab reproduce --report --out runs/reproduce
"""


def register(sub) -> None:
    parser = documented_parser(
        sub, "reproduce", "execute the book's chapters at a scale and judge every published claim (results.md)",
        __doc__, EPILOG)
    parser.add_argument("--scale", choices=["smoke", "cpu", "full"], help="how big the runs are (see below)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; reused to resume)")
    parser.add_argument("--only", nargs="+", default=None, metavar="CHAPTER",
                        help="chapter ids to run, e.g. 01 02 03b (default: every chapter)")
    parser.add_argument("--param", action="append", default=[], metavar="CHAPTER:NAME=VALUE",
                        help="a notebook parameter for one chapter, e.g. 06:imagenet_root=/data/imagenet100; repeat "
                             "for more")
    parser.add_argument("--report", action="store_true",
                        help="only render DIR/results.md and DIR/record.json again from DIR/results.json")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError
    from ..book.reproduce import NOT_JUDGED, reproduce, write_report

    if args.report:
        if args.scale or args.only or args.param:
            raise UsageError("--report renders what DIR/results.json holds; it takes no --scale, --only or --param")
        path = write_report(args.out)
        print(f"report: {path}\nrecord for the book's reproduction page: {path.parent / 'record.json'}")
        return 0
    if not args.scale:
        raise UsageError("give --scale smoke, cpu or full (or --report to render an earlier run's report)")
    outcome = reproduce(args.scale, args.out, args.only, progress=sys.stderr.isatty(), on_chapter=print_chapter,
                        extra=parse_chapter_parameters(args.param))
    print(f"{len(outcome.ran)} chapters run, {len(outcome.skipped)} skipped (done at this commit and scale), "
          f"{len(outcome.failed)} failed")
    print(f"results: {outcome.json_path}\nreport:  {outcome.markdown_path} (verdicts, sanity checks apart, and "
          f"the {len(NOT_JUDGED)} published figures not judged, with the reason for each)")
    if outcome.failed:
        print(f"cifar-lab reproduce: error: chapter {', '.join(outcome.failed)} failed; the executed notebooks "
              f"under {args.out} show where", file=sys.stderr)
        return 1
    return 0


def parse_chapter_parameters(items: list[str]) -> dict[str, dict]:
    """["06:imagenet_root=/data/in100"] -> {"06": {"imagenet_root": "/data/in100"}}."""
    from ..errors import UsageError
    from ..book.runner import parse_value

    extra: dict[str, dict] = {}
    for item in items:
        chapter, colon, assignment = item.partition(":")
        name, equals, value = assignment.partition("=")
        if not colon or not equals or not chapter.strip() or not name.strip():
            raise UsageError(f"--param {item!r} is not CHAPTER:NAME=VALUE; for example --param "
                             f"06:imagenet_root=/data/imagenet100")
        extra.setdefault(chapter.strip(), {})[name.strip()] = parse_value(value.strip())
    return extra


def print_chapter(entry: dict, skipped: bool) -> None:
    from ..book.reproduce import verdict_counts

    counts = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(entry).items()) or "no claims"
    checks = [row["result"] for row in entry.get("checks", [])]
    if checks:
        counts += "; sanity checks: " + ", ".join(f"{checks.count(r)} {r}" for r in dict.fromkeys(checks))
    status = entry["status"] if entry["status"] == "ok" else f"FAILED ({entry['error']})"
    when = "skipped: done at this commit and scale" if skipped else f"{entry['seconds']:.0f} s"
    print(f"{entry['chapter']:>4}  {status}  {when}  {counts}", flush=True)
