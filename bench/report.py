"""Render docs/results.md from every bench/results/*.json that the benchmarks wrote (``bench/record.py``).

Generic: each record carries how it is shown (``present``: its tables with their column specs and
the sentences that read them, written by its benchmark's ``present(record)``), and the prose around
them (the header, each section's title and what it measures) is the Markdown template
``bench/results.template.md``. Every number comes from the JSON files; the output depends on them
and the template only, so running it twice gives the same file. The README's one number (how long
the first ``bin/run`` takes) is rendered too, between ``<!-- first_run -->`` markers.

    .venv/bin/python bench/report.py            # (re)write docs/results.md and the README's marked span
    .venv/bin/python bench/report.py --check    # exit 1 when either is not what the JSON gives
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import MISSING, plain  # noqa: E402  (after the path insert)

RESULTS = ROOT / "bench" / "results"
TEMPLATE = ROOT / "bench" / "results.template.md"
OUTPUT = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
README_SPANS = ("first_run",)  # <!-- NAME --> ... <!-- /NAME --> in the README, from present["readme"][NAME]


def cell(value, fmt: str) -> str:
    """One table cell: ``value`` in the format its column names (``bench.record.FORMATS``)."""
    kind, _, digits = fmt.partition(":")
    if kind == "text":
        return str(value)
    if kind == "plain":
        return plain(value)
    places = int(digits or 0)
    if kind == "fixed":
        return f"{value:,.{places}f}"
    if kind == "range":
        return f"{value['median']:,.{places}f} [{value['min']:,.{places}f}–{value['max']:,.{places}f}]"
    if kind == "list":
        return ", ".join(f"{v:.{places}f}" for v in value) if value else MISSING
    raise ValueError(f"unknown cell format '{fmt}'; valid: text, plain, fixed:N, range:N, list:N")


def markdown_table(table: dict) -> list[str]:
    columns = table["columns"]
    lines = ["| " + " | ".join(c["title"] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in table["rows"]:
        cells = [cell(row[c["key"]], c["format"]) if row.get(c["key"]) is not None else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _generic_present(record: dict) -> dict:
    """A record written without ``present``: every table with every key, as it is."""

    def shown(caption, rows):
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        return {"caption": caption, "columns": [{"key": k, "title": k, "format": "plain"} for k in keys], "rows": rows}

    tables = [shown("", record.get("rows", []))] + [shown(n, r) for n, r in record.get("tables", {}).items()]
    return {"tables": tables, "reading": []}


def provenance(record: dict, source: Path) -> list[str]:
    """Where the numbers come from: command, commit, date, machine, load, raw file."""
    machine = record.get("machine") or {}
    commit = record.get("commit")
    state = MISSING if commit is None else f"`{commit[:12]}`"
    if commit is not None and record.get("dirty"):
        state += " with uncommitted changes in " + ", ".join(f"`{p}`" for p in record.get("dirty_paths", []))
    elif commit is not None and record.get("dirty") is False:
        state += " (clean tree)"
    cores = machine.get("logical_cores")
    hardware = (
        f"{machine.get('cpu') or f'CPU model {MISSING}'}, {cores if cores is not None else MISSING} logical cores"
    )
    if machine.get("usable_cores") not in (None, cores):
        hardware += f" ({machine['usable_cores']} usable)"
    if machine.get("memory_gib") is not None:
        hardware += f", {machine['memory_gib']} GiB memory"
    software = ", ".join(p for p in (machine.get("os"), machine.get("kernel") and f"Linux {machine['kernel']}") if p)
    versions = ", ".join(f"{name} {version}" for name, version in (machine.get("versions") or {}).items())
    load = record.get("load_average")
    environment = " ".join(f"{k}={v}" for k, v in (record.get("environment") or {}).items())
    command = f"{environment} {record['command']}".strip() if record.get("command") else MISSING
    lines = [
        f"- Command: `{command}`" + (f" (at niceness {machine['niceness']})" if machine.get("niceness") else ""),
        f"- Commit: {state}",
        f"- Date (UTC): {record.get('date') or MISSING}"
        + (f"; took {record['duration_s']:,.0f} s" if record.get("duration_s") is not None else ""),
        f"- Machine: {hardware}",
        f"- Software: {'; '.join(p for p in (software, versions) if p) or MISSING}",
        "- Load average (1, 5, 15 min): "
        + (f"{_triple(load['start'])} at the start, {_triple(load['end'])} at the end" if load else MISSING),
    ]
    if record.get("parameters"):
        lines.append(f"- Parameters: {_inline(record['parameters'])}")
    if record.get("subject"):
        lines.append(f"- Measured: {_inline(record['subject'])}")
    try:
        relative = source.resolve().relative_to(ROOT).as_posix()
        lines.append(f"- Raw data: [`{relative}`](../{relative})")
    except ValueError:
        lines.append(f"- Raw data: `{source.name}`")
    return lines


def _triple(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _inline(mapping: dict) -> str:
    return ", ".join(f"{key} {plain(value)}" for key, value in mapping.items())


def read_template(path: Path = TEMPLATE) -> tuple[str, dict[str, tuple[str, str]]]:
    """(the header, {benchmark: (section title, what it measures)}) of the template, in its order."""
    head, *parts = re.split(r"^<!-- section: (\w+) -->\n", path.read_text(), flags=re.M)
    sections = {}
    for name, text in zip(parts[::2], parts[1::2]):
        title, _, about = text.strip().partition("\n")
        sections[name] = (title.removeprefix("## ").strip(), about.strip())
    return head.strip(), sections


def section(record: dict, source: Path, title: str, about: str) -> list[str]:
    lines = [f"## {title}", ""] + ([about, ""] if about else [])
    present = record.get("present") or _generic_present(record)
    for table in present["tables"]:
        lines += ([f"**{table['caption']}**", ""] if table["caption"] else []) + markdown_table(table) + [""]
    if present["reading"]:
        lines += [" ".join(present["reading"]), ""]
    if record.get("note"):
        lines += [f"*Note:* {record['note']}", ""]
    return lines + provenance(record, source) + [""]


def load(results: Path) -> list[tuple[Path, dict]]:
    records = []
    for path in sorted(results.glob("*.json")):
        record = json.loads(path.read_text())
        record.setdefault("benchmark", path.stem)
        records.append((path, record))
    return records


def render(results: Path = RESULTS, template: Path = TEMPLATE) -> str:
    """The whole of docs/results.md from the JSON files under ``results`` and the template."""
    head, known = read_template(template)
    rank = {name: i for i, name in enumerate(known)}
    records = sorted(load(results), key=lambda item: (rank.get(item[1]["benchmark"], len(rank)), item[1]["benchmark"]))
    titles = [known.get(record["benchmark"], (record["benchmark"], ""))[0] for _, record in records]
    # several records of one benchmark (a screen in rounds): the second and later are numbered, so
    # each heading has its own anchor and the first keeps the one links point to
    titles = [t if titles[:i].count(t) == 0 else f"{t} (round {titles[:i].count(t) + 1})" for i, t in enumerate(titles)]
    lines = [head, ""]
    lines += ["Sections:", "", *(f"- [{t}](#{_anchor(t)})" for t in titles), ""] if records else ["No results yet.", ""]
    for (path, record), title in zip(records, titles):
        lines += section(record, path, title, known.get(record["benchmark"], ("", ""))[1])
    return "\n".join(lines).rstrip("\n") + "\n"


def render_readme(text: str, results: Path = RESULTS) -> str:
    """The README with each marked span rendered from its benchmark's ``present["readme"]``."""
    for name in README_SPANS:
        source, start, end = results / f"{name}.json", f"<!-- {name} -->", f"<!-- /{name} -->"
        if start not in text or end not in text or not source.is_file():
            continue
        sentence = (json.loads(source.read_text()).get("present") or {}).get("readme", {}).get(name)
        if sentence is not None:
            before, rest = text.split(start, 1)
            text = before + start + sentence + end + rest.split(end, 1)[1]
    return text


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS), help="folder of the benchmarks' JSON files")
    parser.add_argument("--template", default=str(TEMPLATE), help="the Markdown template of the prose")
    parser.add_argument("--output", default=str(OUTPUT), help="the Markdown file to write or check")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the output differs from what the JSON gives"
    )
    parser.add_argument("--readme", default=str(README), help="the README whose marked numbers are rendered too")
    args = parser.parse_args()
    output, readme = Path(args.output), Path(args.readme)
    wanted = {output: render(Path(args.results), Path(args.template))}
    if readme.is_file():
        wanted[readme] = render_readme(readme.read_text(), Path(args.results))
    if args.check:
        stale = [path for path, text in wanted.items() if (path.read_text() if path.is_file() else None) != text]
        for path in stale:
            print(
                f"{path} is stale: it differs from what {args.results}/*.json gives; run bench/report.py",
                file=sys.stderr,
            )
        if stale:
            sys.exit(1)
        print(f"{', '.join(str(p) for p in wanted)}: up to date")
        return
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
