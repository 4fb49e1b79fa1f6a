"""The reproduction report (`results.md`), its record for the reproduction page, and the page's claims tables.

`render_markdown(results)` turns what `cifar-lab reproduce` keeps in results.json into results.md: an overview,
then per chapter its provenance, its verdicts, its sanity checks apart, and, when asked for, the verdicts on
its committed record apart again, each labelled with that record's commit and date. `render_claims()` is what
the book's extension (`book/_ext/results_records.py`) puts in place of `CLAIMS_MARKER` on the reproduction
page: every claim with its criterion and the conditions under which it is judged, the sanity checks, and the
figures that are not judged.
"""
from __future__ import annotations

import json
from typing import Any

from .. import provenance
from . import claims
from .chapters import SCALE_WORDS

CLAIMS_MARKER = "% claims-tables"  # the line of the reproduction page that render_claims replaces at build time

RULE = ("A point figure admits the means within half a unit of its last printed digit (of its last non-zero "
        "digit where the source says the figure is approximate, \"~70 %\"); a range admits the means inside it. "
        "A claim **holds** when the mean over seeds lies inside and its 95 % interval is no wider than that band "
        "on each side; it **does not hold** when the whole interval lies outside; otherwise it is "
        "**inconclusive**, and the verdict says how many seeds would narrow the interval enough. \"At least as "
        "good as\" between two variants holds when Welch's 95 % interval of the difference excludes 0 on the good "
        "side, does not hold when it excludes 0 on the bad side, and is inconclusive (no clear difference) "
        "otherwise. A single measurement (a count, a size, one timing) is judged as it stands.")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_counts(rows: list[dict]) -> dict[str, int]:
    """How many rows have each kind of verdict (holds, does not hold, inconclusive, not comparable, not
    measured; the reasons are in the rows)."""
    counts: dict[str, int] = {}
    for row in rows:
        kind = row["verdict"].split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _scale_text(entry: dict) -> str:
    return entry["scale"] if entry["ran_as"] == entry["scale"] else f"{entry['scale']} (ran as {entry['ran_as']})"


def _verdict_table(rows: list[dict]) -> list[str]:
    lines = ["| claim | expected | source | criterion | measured | shown beside (not judged) | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    return lines + [f"| {_cell(row['claim'])} | {_cell(row['expected'])} | {_cell(row['source'])} | "
                    f"{_cell(row['criterion'])} | {_cell(row['shown'])} | {_cell(row.get('beside') or '-')} | "
                    f"{_cell(row['verdict'])} |" for row in rows]


def _committed_section(committed: dict) -> list[str]:
    if not committed.get("found"):
        return ["", f"**Committed record**: none at `{committed['path']}`."]
    lines = ["", f"**Verdicts from the committed record** `{committed['path']}`, not from this run: each was "
                 "measured at the commit and date it names.", "",
             "| claim | expected | criterion | measured | verdict | measured at |",
             "| --- | --- | --- | --- | --- | --- |"]
    return lines + [f"| {_cell(row['claim'])} | {_cell(row['expected'])} | {_cell(row['criterion'])} | "
                    f"{_cell(row['shown'])} | {_cell(row['verdict'])} | {_cell(row.get('attribution') or '-')} |"
                    for row in committed["claims"]]


def render_markdown(results: dict) -> str:
    """results.md: an overview table, then per chapter its provenance, verdicts, sanity checks and (when judged)
    the verdicts on its committed record."""
    entries = list(results["chapters"].values())
    lines = ["# Reproduction report", "",
             f"Written by `cifar-lab reproduce` on {results.get('updated_utc', provenance.utc_now())}. Each claim "
             "is the published figure with its source; the verdict holds the records this run made to the "
             "criterion, or says why the two cannot be compared (synthetic data at smoke scale, a CPU where the "
             "figure is a GPU figure, a shorter run than the recipe, too few seeds).", "", RULE, "",
             "| chapter | status | scale | commit | device | minutes | verdicts |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for entry in entries:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(entry.get("claims", [])).items()) or "-"
        lines.append(f"| {entry['chapter']} {_cell(entry['title'])} | {entry['status']} | {_scale_text(entry)} | "
                     f"`{provenance.short_commit(entry.get('environment'))}` | "
                     f"{_cell((entry.get('environment') or {}).get('device', '?'))} | {entry['seconds'] / 60:.1f} | "
                     f"{_cell(counts)} |")
    for entry in entries:
        lines += ["", f"## {entry['chapter']} · {entry['title']}", ""]
        lines.append(f"`{entry['notebook']}` at scale **{_scale_text(entry)}** ({SCALE_WORDS[entry['ran_as']]}); "
                     f"parameters {json.dumps(entry['parameters'])}.")
        if entry.get("note"):
            lines += ["", f"Note: {entry['note']}."]
        if entry["status"] != "ok":
            lines += ["", f"**Failed**: {entry['error']}",
                      "", f"Executed notebook (with the traceback): `{entry.get('executed_notebook') or '-'}`."]
        lines += ["", "Provenance: " + "; ".join(provenance.describe(entry.get("environment"))) + "."]
        if entry.get("records_note"):
            lines += ["", f"Records: {entry['records_note']}."]
        lines.append("")
        if entry.get("claims"):
            lines += ["**Verdicts**", ""] + _verdict_table(entry["claims"])
        else:
            lines.append("This chapter states no published figure to hold a run against.")
        if entry.get("checks"):
            lines += ["", "**Sanity checks** (they hold by construction: not verdicts)", "",
                      "| check | why it is not a verdict | measured | result |", "| --- | --- | --- | --- |"]
            lines += [f"| {_cell(row['check'])} | {_cell(row['why_not_a_verdict'])} | {_cell(row['shown'])} | "
                      f"{_cell(row['result'])} |" for row in entry["checks"]]
        if entry.get("committed"):
            lines += _committed_section(entry["committed"])
    lines += ["", "## Not judged, and why", "", render_not_judged()]
    return "\n".join(lines).rstrip() + "\n"


def render_not_judged() -> str:
    """NOT_JUDGED as a Markdown table: every figure of the published documents that no claim judges, and why."""
    lines = [f"{len(claims.NOT_JUDGED)} figures of the published documents are not judged:", "",
             "| document | figure | why not judged |", "| --- | --- | --- |"]
    lines += [f"| {_cell(item.document)} | {_cell(item.quote)} | {_cell(item.reason)} |" for item in claims.NOT_JUDGED]
    return "\n".join(lines) + "\n"


def render_claims() -> str:
    """The claims, sanity checks and not-judged figures as the reproduction page shows them (generated from
    CLAIMS, SANITY_CHECKS and NOT_JUDGED when the book is built)."""
    lines = ["### Claims and their criteria", "", RULE, "",
             "| chapter | claim | published | source | criterion | comparable when |",
             "| --- | --- | --- | --- | --- | --- |"]
    for chapter_id, items in claims.CLAIMS.items():
        for claim in items:
            lines.append(f"| {chapter_id} | {_cell(claim.claim)} | {_cell(claim.expected)} | {_cell(claim.source)} | "
                         f"{_cell(claim.criterion_text())} | {_cell(claim.needs_text())} |")
    lines += ["", "### Sanity checks (not verdicts)", "",
              "| chapter | check | why it is not a verdict |", "| --- | --- | --- |"]
    lines += [f"| {chapter_id} | {_cell(item.check)} | {_cell(item.why_not_a_verdict)} |"
              for chapter_id, items in claims.SANITY_CHECKS.items() for item in items]
    lines += ["", "### Not judged, and why", "", render_not_judged()]
    return "\n".join(lines).rstrip() + "\n"


def book_record(results: dict) -> dict:
    """The report as a record for the book's reproduction page (book/results/NAME.json): one row per claim
    judged on this run's records (verdicts on committed records are left out: they are not this run's)."""
    entries = list(results["chapters"].values())
    environments = [entry.get("environment") or {} for entry in entries]
    commits = sorted({provenance.short_commit(env) for env in environments})
    devices = sorted({str(env.get("device", "?")) for env in environments})
    scales = sorted({_scale_text(entry) for entry in entries})
    rows = [[entry["chapter"], row["claim"], row["expected"], row["shown"], row["verdict"]]
            for entry in entries for row in entry.get("claims", [])]
    checks = [[entry["chapter"], row["check"], row["shown"], row["result"]]
              for entry in entries for row in entry.get("checks", [])]
    software = sorted({f"torch {env.get('versions', {}).get('torch')}, Python {env.get('versions', {}).get('python')}"
                       for env in environments if env})
    return {
        "title": f"cifar-lab reproduce at scale {', '.join(scales)} on {', '.join(devices)}",
        "provenance": {"commit": ", ".join(commits), "date": results.get("updated_utc"), "device": ", ".join(devices),
                       "software": "; ".join(software)},
        "measurements": [{"title": "Claims and verdicts",
                          "command": f"cifar-lab reproduce --scale {'/'.join(sorted({e['scale'] for e in entries}))} "
                                     f"--out DIR",
                          "table": {"columns": ["chapter", "claim", "expected", "measured", "verdict"],
                                    "rows": rows}},
                         {"title": "Sanity checks (they hold by construction: not verdicts)",
                          "command": "the same run",
                          "table": {"columns": ["chapter", "check", "measured", "result"], "rows": checks}}],
    }
