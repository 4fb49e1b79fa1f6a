"""Build the book from an edition: the chapters executed once at one scale (`cifar-lab reproduce`), then
turned into HTML with execution off. `stage` lays out the Jupyter Book sources (every page opening with a note
that names the edition, datasets, hardware, commit and date); `publish` keeps a run's small files (executed
notebooks, metrics, provenance, results; never checkpoints) as the committed edition. scripts/book.sh uses
both; it is the usual way in.
"""
from __future__ import annotations

from .parsers import documented_parser

EPILOG = """\
examples:
  cifar-lab edition stage --from book/edition --to _build/stage             # the committed (cpu) edition
  cifar-lab reproduce --scale cpu --out runs/edition-cpu                    # execute the real-data edition
  cifar-lab edition publish --from runs/edition-cpu --to book/edition       # keep it as the committed edition
"""


def register(sub) -> None:
    parser = documented_parser(sub, "edition", "stage or publish an executed edition of the book", __doc__, EPILOG)
    parser.add_argument("action", choices=["stage", "publish"],
                        help="stage: a Jupyter Book source tree from an edition; publish: keep a run as an edition")
    parser.add_argument("--from", dest="source", required=True, metavar="DIR",
                        help="stage: an edition folder; publish: a cifar-lab reproduce --out folder")
    parser.add_argument("--to", dest="target", required=True, metavar="DIR",
                        help="stage: the source tree to write (replaced); publish: the edition folder (replaced)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..book import edition

    if args.action == "stage":
        staged = edition.stage(args.source, args.target)
        facts = edition.note(edition.read_results(args.source))
        print(f"staged edition {facts['edition']} (commit {facts['commit']}, {facts['date']}) into {staged}")
        if facts["failed"]:
            print(f"warning: chapters that failed in this edition: {', '.join(facts['failed'])}")
    else:
        print(f"published {args.source} as {edition.publish(args.source, args.target)}")
    return 0
