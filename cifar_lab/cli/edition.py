"""Build the book from an edition: the chapters executed once at one scale (`cifar-lab reproduce`), then
turned into HTML with execution off. `stage` lays out the Jupyter Book sources (every page opening with a note
that names the edition, datasets, hardware, and each chapter's commit and date); `publish` is the one step that
puts a run into the repository: its executed notebooks, metrics and provenance into book/edition/, and each
chapter's records into book/results/chapters/ (never checkpoints), all replaced in one step. scripts/book.sh
uses both; it is the usual way in.
"""
from __future__ import annotations

from .parsers import documented_parser

EPILOG = """\
examples:
  cifar-lab edition stage --from book/edition --to _build/stage      # the committed (cpu) edition
  cifar-lab reproduce --scale cpu --out runs/edition-cpu             # execute the real-data edition
  cifar-lab edition publish runs/edition-cpu                         # keep it as the committed edition
  cifar-lab reproduce --scale cpu --only 04 --out runs/ch4           # one chapter again ...
  cifar-lab edition publish runs/ch4                                 # ... replaces that chapter only
"""


def register(sub) -> None:
    parser = documented_parser(sub, "edition", "stage or publish an executed edition of the book", __doc__, EPILOG)
    parser.add_argument("action", choices=["stage", "publish"],
                        help="stage: a Jupyter Book source tree from an edition; publish: keep a run as an edition")
    parser.add_argument("run", nargs="?", metavar="DIR", default=None,
                        help="publish: the cifar-lab reproduce --out folder (or give it as --from; default: none)")
    parser.add_argument("--from", dest="source", metavar="DIR", default=None,
                        help="stage: an edition folder; publish: a cifar-lab reproduce --out folder "
                             "(default: none; one of DIR and --from is required)")
    parser.add_argument("--to", dest="target", metavar="DIR", default=None,
                        help="stage: the source tree to write (replaced; required); publish: the repository to "
                             "publish into (default: the clone the package runs from)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..book import edition
    from ..errors import UsageError

    if args.source is None:
        args.source = args.run
    elif args.run is not None:
        raise UsageError(f"two folders given ({args.run} and --from {args.source}); give one")
    if args.source is None:
        raise UsageError(f"edition {args.action} needs a folder: cifar-lab edition {args.action} --from DIR")
    if args.action == "stage":
        if args.target is None:
            raise UsageError("edition stage needs --to DIR, the source tree to write (e.g. --to _build/stage)")
        staged = edition.stage(args.source, args.target)
        facts = edition.note(edition.read_results(args.source))
        print(f"staged edition {facts['edition']} ({facts['commits']}) into {staged}")
        if facts["failed"]:
            print(f"warning: chapters that failed in this edition: {', '.join(facts['failed'])}")
    else:
        published = edition.publish(args.source, args.target)
        facts = edition.note(edition.read_results(published))
        print(f"published {args.source} into {published} (edition {facts['edition']}: {facts['commits']}); "
              f"its records are in {published.parent / 'results' / 'chapters'}")
    return 0
