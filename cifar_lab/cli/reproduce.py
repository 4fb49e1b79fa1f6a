"""Execute the chapters listed in _toc.yml (papermill, one folder each under DIR), where each chapter writes its
typed records (DIR/<notebook>/records.json); judge every published claim on the records this run made and write
DIR/results.json and DIR/results.md: each claim with its source, criterion, the measured mean with its 95 %
interval, and a verdict (holds, does not hold, inconclusive with the seeds that would settle it, not comparable
and why, or not measured); the sanity checks, which hold by construction, apart from the verdicts; and the
published figures that are not judged, with the reason for each. With --judge-committed the claims are also
judged on the committed records (book/results/chapters/<notebook>.json), and those verdicts are shown apart,
labelled with the commit and date they were measured at. Nothing is written outside DIR.

A failed chapter is recorded (its executed notebook kept) and the others run; the exit code is then 1. Running
again skips the chapters already done with the same code, scale and parameters.
"""
from __future__ import annotations

import sys

from .parsers import documented_parser


EPILOG = """\
scales:
  smoke  synthetic data, CPU-sized runs (what CI runs; minutes on a laptop): no published
         accuracy is comparable, so those claims say "not comparable: dataset synthetic"
  cpu    the real-data edition: each chapter's Fashion-MNIST experiment on the real dataset
         (chapters without one run as smoke); its Fashion-MNIST claims are judged on those runs;
         `cifar-lab edition publish DIR` then commits the records
  full   the presets' recipes on the real datasets, 3 seeds per judged accuracy: a GPU job (see the
         book's reproduction page)

examples:
  cifar-lab reproduce --scale smoke --out runs/reproduce-smoke
  cifar-lab reproduce --scale smoke --only 01 02 --out runs/reproduce-smoke
  cifar-lab reproduce --scale smoke --only 02 --judge-committed --out runs/reproduce-smoke
  cifar-lab reproduce --scale full --out runs/reproduce
  cifar-lab reproduce --report --out runs/reproduce
"""


def register(sub) -> None:
    parser = documented_parser(
        sub, "reproduce", "execute the book's chapters at a scale and judge every published claim (results.md)",
        __doc__, EPILOG)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--scale", choices=["smoke", "cpu", "full"],
                      help="how big the runs are (see below); required unless --report")
    what.add_argument("--report", action="store_true",
                      help="run nothing: render DIR/results.md and DIR/record.json again from DIR/results.json "
                           "(default: off)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; reused to resume)")
    parser.add_argument("--only", nargs="+", default=None, metavar="CHAPTER",
                        help="chapter ids to run, e.g. 01 02 03b (default: every chapter)")
    parser.add_argument("--param", action="append", default=[], metavar="CHAPTER:NAME=VALUE",
                        help="a notebook parameter for one chapter, e.g. 06:imagenet_root=/data/imagenet100; repeat "
                             "for more (default: none)")
    parser.add_argument("--judge-committed", action="store_true",
                        help="also judge the claims on each chapter's committed record "
                             "(book/results/chapters/<notebook>.json), shown apart and labelled with that record's "
                             "commit and date (default: off: only this run's records are judged)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError
    from ..book.claims import NOT_JUDGED
    from ..book.reproduce import reproduce, write_report

    if args.report:
        if args.only or args.param or args.judge_committed:
            raise UsageError("--report renders what DIR/results.json holds; it takes no --only, --param or "
                             "--judge-committed")
        path = write_report(args.out)
        print(f"report: {path}\nrecord for the book's reproduction page: {path.parent / 'record.json'}")
        return 0
    outcome = reproduce(args.scale, args.out, args.only, progress=sys.stderr.isatty(), on_chapter=print_chapter,
                        extra=parse_chapter_parameters(args.param), judge_committed=args.judge_committed)
    print(f"{len(outcome.ran)} chapters run, {len(outcome.skipped)} skipped (done with this code, scale and "
          f"parameters), {len(outcome.failed)} failed")
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
    """One line per chapter (status, time, verdict counts), then one line per claim that was measured; the
    verdicts on a committed record follow apart, each with the commit and date it was measured at."""
    from ..book.claims import NOT_MEASURED
    from ..book.report import verdict_counts

    counts = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(entry.get("claims", [])).items())
    checks = [row["result"] for row in entry.get("checks", [])]
    if checks:
        counts += "; sanity checks: " + ", ".join(f"{checks.count(r)} {r}" for r in dict.fromkeys(checks))
    status = entry["status"] if entry["status"] == "ok" else f"FAILED ({entry['error']})"
    when = "skipped: done with this code, scale and parameters" if skipped else f"{entry['seconds']:.0f} s"
    print(f"{entry['chapter']:>4}  {status}  {when}  {counts or 'no claims'}", flush=True)
    for row in entry.get("claims", []):
        if row["verdict"] != NOT_MEASURED:
            print(f"      {row['claim']}: {row['shown']}: {row['verdict']} ({row['attribution']})", flush=True)
    committed = entry.get("committed")
    if committed is not None:
        if not committed["found"]:
            print(f"      committed record: none at {committed['path']}", flush=True)
        for row in committed["claims"]:
            if row["verdict"] != NOT_MEASURED:
                print(f"      {row['claim']}: {row['shown']}: {row['verdict']} ({row['attribution']})", flush=True)
