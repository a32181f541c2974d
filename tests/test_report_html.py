"""report.html: written by every search, rebuilt by `trainfree report` from an older run,
honest about a run with no measured frontier, and drawn by a real browser (headless
Chromium, from a file, network off): one SVG point per frontier row on every panel."""

from __future__ import annotations

import json
import shutil
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from browser import CHROMIUM, drawn_points, load
from test_search import settings
from trainfree import cli
from trainfree.search import SearchRun
from trainfree.search.run_files import read_run
from trainfree.search.run_plots import panel_figure
from trainfree.search.run_report import REPORT, export_command, pairs, write_report

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    SearchRun.open(out, settings(budget="24", workers=1)).run()
    return out


def _frontier(out):
    return json.loads((out / "frontier.json").read_text())


def test_every_search_writes_a_self_contained_report(run_dir):
    page = (run_dir / REPORT).read_text()
    models = _frontier(run_dir)["models"]
    assert models
    assert "<script src=" not in page and "Plotly.newPlot" in page  # the bundle is inline
    files = read_run(run_dir)
    for x, y in pairs(files):  # SVG scatter, never the WebGL scattergl (a canvas: nothing to count)
        assert {t.type for t in panel_figure(files, x, y).data} == {"scatter"}
    for m in models:  # the export command of every frontier row, as it would be typed
        assert export_command(run_dir, m["rank"]).replace("'", "&#x27;") in page
    csv = pd.read_csv(run_dir / "frontier.csv")
    assert len(csv) == len(models)
    # predicted quality in the benchmark's unit, labelled, with an interval (gpt2: perplexity)
    assert "validation perplexity" in _frontier(run_dir)["quality"]["note"]
    for m in models:
        p = m["predicted"]
        assert p["label"] == "validation perplexity (predicted)" and p["low"] <= p["value"] <= p["high"]
    assert (csv["predicted_valid_ppl_low"] <= csv["predicted_valid_ppl_high"]).all()
    assert "validation perplexity (predicted)" in page
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_an_older_run_still_gets_a_report(run_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    for name in (REPORT, "evaluated.csv", "predictor.json"):
        (old / name).unlink(missing_ok=True)
    front = _frontier(old)
    for m in front["models"]:
        m.pop("predicted", None)
    front.pop("quality", None)
    (old / "frontier.json").write_text(json.dumps(front))
    done = CliRunner().invoke(cli.app, ["report", "--run", str(old)])
    assert done.exit_code == 0, done.output
    page = (old / REPORT).read_text()
    assert "not in this run directory: evaluated.csv" in page
    assert "Applied by `trainfree report`: the run predates it." in page  # the shipped fit, now
    assert "(predicted)" in page


def test_a_run_without_a_measured_frontier_says_so(run_dir, tmp_path):
    empty = tmp_path / "empty"
    shutil.copytree(run_dir, empty)
    front = _frontier(empty)
    front["models"] = []
    (empty / "frontier.json").write_text(json.dumps(front))
    write_report(empty)
    page = (empty / REPORT).read_text()
    assert "This run has no measured frontier" in page
    assert 'id="figure' not in page  # no empty plot


def test_report_refuses_a_folder_that_is_no_run(tmp_path):
    done = CliRunner().invoke(cli.app, ["report", "--run", str(tmp_path)])
    assert done.exit_code == 2 and "holds no search run" in done.output
    assert list(tmp_path.iterdir()) == []  # nothing written


@needs_chromium
def test_the_browser_check_sees_console_errors_and_points(tmp_path):
    """The check below can fail: a console error and a missing point are seen."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><svg><g class="trace scatter tracex"><path class="point"></path>'
                    '</g></svg><script>console.error("broken"); nosuchfunction();</script></body></html>')
    loaded = load(page, tmp_path / "profile")
    assert drawn_points(loaded.dom) == {"x": 1}
    assert any("broken" in m for m in loaded.console) and any("nosuchfunction" in m for m in loaded.console)


@needs_chromium
def test_report_renders_in_chromium_offline(run_dir, tmp_path):
    started = time.perf_counter()
    loaded = load(run_dir / REPORT, tmp_path / "profile")
    seconds = time.perf_counter() - started
    rows = len(pd.read_csv(run_dir / "frontier.csv"))
    points = drawn_points(loaded.dom)
    panels = {uid: n for uid, n in points.items() if uid.startswith("frontier-")}
    front = _frontier(run_dir)
    n_obj = len(front["objectives"])
    assert len(panels) == n_obj * (n_obj - 1) // 2, points  # one panel per pair of objectives
    assert all(n == rows for n in panels.values()), (panels, rows)
    assert sum(n for uid, n in points.items() if uid.startswith("evaluated-")) > 0
    assert loaded.console == [], loaded.console
    print(f"browser check: {seconds:.1f} s")


def test_reference_models_are_shown(run_dir, tmp_path):
    """A space's reference models (the llama space's SmolLM2, ...) in the table and on the
    panels where their measured cost is an axis."""
    with_refs = tmp_path / "refs"
    shutil.copytree(run_dir, with_refs)
    front = _frontier(with_refs)
    front["references"] = [{"name": "RefModel-1", "params": 3e6, "decoder_params": 1e6, "measured": True}]
    (with_refs / "frontier.json").write_text(json.dumps(front))
    page = (write_report(with_refs), (with_refs / REPORT).read_text())[1]
    assert "Reference models" in page and "<td class=\"l\">RefModel-1</td>" in page
    assert page.count('"text":"RefModel-1"') + page.count('"text": "RefModel-1"') >= 1  # a labelled line
