"""The docs' numbers come from the benchmarks' JSON files: docs/results.md must be what
bench/report.py renders from bench/results/*.json, and the README stays a short front door."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_results_document_is_rendered_from_the_benchmark_files():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    assert any("docs/results.md" in line for line in lines)


def test_readme_time_is_rendered_from_the_first_run_benchmark(tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench import first_run, report

    record = {
        "benchmark": "first_run",
        "date": "2026-01-02T03:04:05Z",
        "machine": {"logical_cores": 2},
        "load_average": {"start": [1.5, 1.0, 1.0], "end": [1.0, 1.0, 1.0]},
        "rows": [],
        "summary": {"median_wall_s": {"aaaaaaa": 700.0, "bbbbbbb": 612.4}},
    }
    record["present"] = first_run.present(record)  # as bench/first_run.py writes it
    (tmp_path / "first_run.json").write_text(json.dumps(record))
    text = "before <!-- first_run -->old words<!-- /first_run --> after"
    rendered = report.render_readme(text, tmp_path)
    assert rendered.startswith("before <!-- first_run -->10 min 12 s from a fresh clone")
    assert "commit `bbbbbbb`" in rendered and "old words" not in rendered
    assert rendered.endswith("<!-- /first_run --> after")
    assert report.render_readme(rendered, tmp_path) == rendered  # idempotent


def test_a_preset_first_run_names_its_command_and_pictures_and_leaves_the_readme_alone():
    sys.path.insert(0, str(ROOT))
    from bench import first_run

    record = {
        "benchmark": "first_run_stylegan_emoji",
        "parameters": {"commits": ["bbbbbbb"], "rounds": 1, "params": ["preset=stylegan-emoji"]},
        "rows": [{"round": 1, "commit": "bbbbbbb", "wall_s": 1800.0, "pictures": {"train": ["a.png", "b.png"]}}],
        "summary": {"median_wall_s": {"bbbbbbb": 1800.0}},
    }
    shown = first_run.present(record)
    assert shown["reading"][0] == "`bin/run -P preset=stylegan-emoji`."
    assert "Pictures logged: train 2." in shown["reading"] and not shown.get("readme")


def test_the_renderer_formats_cells_by_their_column_spec_and_takes_the_template_prose(tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench import record, report

    assert report.cell(1234.5678, "fixed:1") == "1,234.6" and report.cell("x", "text") == "x"
    assert report.cell({"median": 2.0, "min": 1.0, "max": 3.25}, "range:1") == "2.0 [1.0–3.2]"
    assert report.cell([1.0, 2.5], "list:1") == "1.0, 2.5" and report.cell([], "list:1") == record.MISSING
    shown = record.presented([("cap", [record.column("a", "A", "fixed:2")], [{"a": 1.0}, {"a": None}])], ["Read it."])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "demo.json").write_text(json.dumps({"benchmark": "demo", "present": shown}))
    (tmp_path / "template.md").write_text(
        "# Head\n\nIntro.\n\n<!-- section: demo -->\n## Demo section\n\nWhat it is.\n"
    )
    text = report.render(tmp_path / "results", tmp_path / "template.md")
    assert text.startswith("# Head\n\nIntro.\n\nSections:\n\n- [Demo section](#demo-section)\n")
    assert "## Demo section\n\nWhat it is.\n\n**cap**\n\n| A |\n|---|\n| 1.00 |\n|  |\n\nRead it." in text


def test_the_reference_sections_are_what_the_code_renders():
    from pipeline import docs

    assert docs.main(["--check"]) == 0, "run: python -m pipeline.docs"


def test_the_rendered_tables_follow_the_code():
    import dataclasses

    from models import registry
    from pipeline import docs
    from pipeline.config import Config

    parameters = docs.parameters()
    for f in dataclasses.fields(Config):
        if not f.metadata.get("internal"):
            assert f"| `{f.name}` | {docs._value(f.default)} |" in parameters
    families = docs.families(long=False)
    assert [line.split("`")[1] for line in families.splitlines()[2:]] == registry.names()
    assert "| `cdcgan` |" in families and "generator `(z, label) → image`" in families
    assert "synthesis `(ws, noise) → image`" in families
    options = docs.options(long=True)
    assert "| `gan_loss` | `dcgan`, `gan`, `cdcgan` | `ns`; `dcgan`, `cdcgan`: `hinge` |" in options
    assert "| `ema` | `dcgan`, `gan`, `cdcgan`, `progan` | `0`; `progan`: `0.999` |" in options
    assert "{defaults:" not in docs.parameters() and "`dcgan` 32" in parameters  # placeholders filled


def test_a_section_without_its_markers_is_named():
    import pytest

    from pipeline import docs

    with pytest.raises(ValueError, match="no '<!-- generated: layout -->'"):
        docs.render("# a file without markers\n", {"layout": docs.layout})
    text = "a\n<!-- generated: x -->\nold\n<!-- /generated: x -->\nb\n"
    assert docs.render(text, {"x": lambda: "new"}) == "a\n<!-- generated: x -->\nnew\n<!-- /generated: x -->\nb\n"


def test_every_kept_record_says_how_it_is_shown_and_the_renderer_stays_generic():
    records = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert records
    for path in records:
        present = json.loads(path.read_text()).get("present")
        assert present and present["tables"] and all(t["columns"] for t in present["tables"]), path.name
    source = (ROOT / "bench" / "report.py").read_text()
    assert len(source.splitlines()) <= 300
    assert "equal_time" not in source and "train_speed" not in source  # nothing about one benchmark
