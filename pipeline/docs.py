"""Write the reference sections of README.md and docs/usage.md from the code, as MLproject is
written: the model families (the registry's summaries, descriptions and shipped graphs), the
parameters (Config's fields and the families' options, with their defaults and documentation),
the layout (each package's modules and their first docstring line) and the benchmarks. Each
section sits between ``<!-- generated: NAME -->`` and ``<!-- /generated: NAME -->``; the text
around it is kept.

    python -m pipeline.docs           # rewrite the sections
    python -m pipeline.docs --check   # exit 1 when a committed section is stale
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import sys
from pathlib import Path

from models import registry
from pipeline.config import Config

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ("contract", "models", "export", "serving", "pipeline", "bench")
DOC_SHAPE = (28, 28, 1)  # the image shape the docs' signatures are shown for


def _families_list() -> str:
    names = [f"`{n}`" for n in registry.names()]
    return ", ".join(names[:-1]) + f" or {names[-1]}"


def _defaults(field: str) -> str:
    """Each family's default of a config field, e.g. "`dcgan` 32, `gan` 64, …"."""
    values = []
    for name in registry.names():
        family = registry.get(name)
        value = family.default_batch_size if field == "batch_size" else family.defaults.get(field, 0)
        if value:
            values.append(f"`{name}` {value:g}")
    return ", ".join(values)


def _text(doc: str) -> str:
    """A field's documentation with its placeholders filled: ``{families}``, ``{defaults:FIELD}``."""
    doc = doc.replace("{families}", _families_list())
    return re.sub(r"\{defaults:(\w+)\}", lambda m: _defaults(m.group(1)), doc)


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    if isinstance(value, bool):
        return f"`{int(value)}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`" if value != "" else '`""`'


def _arrow(signature) -> str:
    def side(names):
        return names[0] if len(names) == 1 else f"({', '.join(names)})"

    return f"{side([t.name for t in signature.inputs])} → {side(list(signature.output_names))}"


def _exported(name: str) -> str:
    family = registry.get(name)
    spec = registry.model_spec(
        name,
        image_shape=DOC_SHAPE,
        latent_dim=family.defaults["latent_dim"],
        learning_rate=family.defaults["learning_rate"],
        seed=0,
    )
    return " and ".join(f"{stem} `{_arrow(found)}`" for stem, found in family.signatures(spec).items())


def families(long: bool) -> str:
    """The families table: name, what it is (the summary, or the description in ``long``), graphs."""
    default = Config.__dataclass_fields__["model"].default
    rows = ["| `model` | what it is | exported |", "|---|---|---|"]
    for name in registry.names():
        family = registry.get(name)
        what = (family.description or family.summary) if long else family.summary
        rows.append(f"| `{name}`{' (default)' if name == default else ''} | {_cell(what)} | {_exported(name)} |")
    return "\n".join(rows)


def parameters() -> str:
    """Config's fields: name, default, documentation."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Config):
        if not f.metadata.get("internal"):
            meaning = _cell(_text(f.metadata.get("doc") or f.metadata["help"]))
            rows.append(f"| `{f.name}` | {_value(f.default)} | {meaning} |")
    return "\n".join(rows)


def options(long: bool) -> str:
    """Every family option: name, the families that take it, its default (and the families whose
    own default differs), what it is (the help, or the documentation in ``long``)."""
    rows = ["| option | families | default | meaning |", "|---|---|---|---|"]
    fields = registry.option_fields()
    for name, owners in registry.option_owners().items():
        f = fields[name]
        default = _value(f.default)
        differing: dict[str, list[str]] = {}
        for owner in owners:
            own = registry.get(owner).option_defaults.get(name, f.default)
            if own != f.default:
                differing.setdefault(_value(own), []).append(f"`{owner}`")
        default += "".join(f"; {', '.join(who)}: {value}" for value, who in differing.items())
        meaning = _cell(_text((f.metadata.get("doc") if long else None) or f.metadata["help"]))
        rows.append(f"| `{name}` | {', '.join(f'`{o}`' for o in owners)} | {default} | {meaning} |")
    return "\n".join(rows)


def _first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def layout() -> str:
    """Each package's modules with the first paragraph of their docstring."""
    rows = ["| module | what it is |", "|---|---|"]
    for package in LAYOUT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name != "__init__.py" or package == "contract":
                rows.append(f"| `{path.relative_to(ROOT)}` | {_cell(_first_line(path))} |")
    return "\n".join(rows)


def benchmarks() -> str:
    """The benchmark scripts (those that write a record to bench/results/)."""
    scripts = [p.name for p in sorted((ROOT / "bench").glob("*.py")) if "record.add_arguments(" in p.read_text()]
    runners = [p.name for p in sorted((ROOT / "bench").glob("*.sh"))]
    line = "`bench/`: the benchmark scripts (" + ", ".join(f"`{s}`" for s in scripts) + "), each with `--help`"
    if runners:
        line += "; the study runners (" + ", ".join(f"`{s}`" for s in runners) + ") call them step by step"
        line += ", their steps in their header"
    return line + "."


SECTIONS = {
    "README.md": {"families": lambda: families(False), "options": lambda: options(False), "benchmarks": benchmarks},
    "docs/usage.md": {
        "parameters": parameters,
        "families": lambda: families(True),
        "options": lambda: options(True),
        "layout": layout,
    },
}


def render(text: str, sections: dict) -> str:
    """``text`` with each marked section's body replaced by its renderer's output.

    Raises:
        ValueError: a section's markers are missing (the message names them).
    """
    for name, make in sections.items():
        start, end = f"<!-- generated: {name} -->", f"<!-- /generated: {name} -->"
        if start not in text or end not in text:
            raise ValueError(f"no '{start}' ... '{end}' markers; add them where the section goes")
        before, rest = text.split(start, 1)
        text = before + start + "\n" + make() + "\n" + end + rest.split(end, 1)[1]
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed section is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, sections in SECTIONS.items():
        path = ROOT / name
        text = path.read_text()
        new = render(text, sections)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
                print(f"wrote {path}")
    if args.check and stale:
        print(f"{', '.join(stale)}: stale; run: python -m pipeline.docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
