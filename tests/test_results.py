"""The committed data under results/: clean stamps, every file declared by a benchmark, every stored
config what its command gives today. Marked ``results``: not the unit suite (a changed default fails
here, telling you to re-run or delete the table, not in the unit tests)."""

import importlib
import pkgutil
import re
import subprocess
from pathlib import Path

import pytest

import benchmarks
from benchmarks import common
from benchmarks import iteration_draws as it
from benchmarks.common import stale

pytestmark = pytest.mark.results
ROOT = Path(__file__).resolve().parents[1]
DIRTY = re.compile(r'"commit": "[0-9a-f]+-dirty"|at commit [0-9a-f]+-dirty')


def _modules():
    names = [m.name for m in pkgutil.walk_packages(benchmarks.__path__, "benchmarks.")]
    return [importlib.import_module(name) for name in sorted(names)]


TABLES = [(module, table) for module in _modules() for table in getattr(module, "TABLES", [])]


def _committed() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode:
        pytest.skip("not a git checkout")
    return listed.stdout.split()


def test_no_committed_result_carries_a_dirty_stamp():
    dirty = [f for f in _committed() if f.endswith((".json", ".md")) and DIRTY.search((ROOT / f).read_text())]
    assert not dirty, f"made from uncommitted code: re-run from a clean commit or delete: {dirty[:10]}"


def test_every_committed_result_belongs_to_a_table_a_benchmark_declares():
    orphans = [f for f in _committed() if not any(t.accounts_for(f) for _, t in TABLES)]
    assert not orphans, f"declare these in a benchmark module's TABLES, or delete them: {orphans[:10]}"


def test_no_run_log_is_committed():
    assert not [f for f in _committed() if f.endswith(".log")], "logs stay out of git (.gitignore)"


@pytest.mark.parametrize(("module", "table"), TABLES, ids=[t.path for _, t in TABLES])
def test_every_table_is_what_its_command_gives_today(module, table):
    assert (ROOT / table.path).is_file(), f"{table.path} is declared but not committed"
    diff = stale(module, table)
    assert not diff, f"{table.path} is stale: re-run {table.commands} or delete it: {dict(list(diff.items())[:3])}"


def test_the_headline_table_is_rendered_from_its_records():
    from benchmarks import headline_cells, headline_table

    assert headline_cells.TABLE.read_text() == headline_table.table(headline_cells.OUT) + "\n", "run python -m benchmarks.headline --table"


def test_the_targets_are_judged_from_todays_records():
    from benchmarks import targets

    assert targets.OUT.read_text() == targets.render() + "\n", "run python -m benchmarks.targets"


@pytest.mark.parametrize("suffix", ["", "_c128", "_gemma-3-270m"])
def test_the_headline_figures_are_drawn_from_their_records(suffix):
    """Each headline table with a SparseGPT row has its figure beside it, drawn from today's records."""
    from benchmarks import headline_plot, headline_table

    out = ROOT / "results" / f"headline{suffix}"
    figure = out.with_suffix(".png")
    assert figure.is_file(), f"run python -m benchmarks.headline --table for {out.name}"

    def rounded(ratios):
        return {row: {s: [round(v, 6) for v in pair] for s, pair in by.items()} for row, by in ratios.items()}

    assert rounded(headline_plot.drawn_ratios(figure)) == rounded(headline_table.relative_ppl(out)), \
        f"{figure.name} is stale: run python -m benchmarks.headline --table for {out.name}"


@pytest.mark.parametrize("second", [False, True], ids=["smollm2", "second-model"])
def test_the_seeds_tables_are_rendered_from_their_records(second):
    from benchmarks import headline_cells, headline_table
    from crepe.run.options import RunOptions

    path, model = ((headline_cells.SECOND_MODEL_SEEDS_TABLE, headline_cells.SECOND_MODEL) if second
                   else (headline_cells.SEEDS_TABLE, RunOptions.model))
    assert path.read_text() == headline_table.seeds_table(model) + "\n", "run python -m benchmarks.headline --table (--model)"


@pytest.mark.parametrize("name", ["dense_precision", "damping_c128"])
def test_the_selection_tables_are_rendered_from_their_records(name):
    """The two studies that share common.selection_intro / selection_table: each committed table is what
    its render gives from the committed records (the shared helpers must not move a figure)."""
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.TABLE.read_text() == module.render(module.OUT) + "\n", f"run python -m benchmarks.{name} --table"


@pytest.mark.parametrize("name", ["mask_choice", "default_choice", "iteration_draws"])
def test_the_shipped_defaults_are_the_held_out_choice(name):
    """CRePE's score defaults (mask_choice), the admm-grad update's damping and dense target
    (default_choice) and its iteration count (iteration_draws) are what the committed held-out
    selection picks: a default moved by hand, or a re-run that picks another, fails."""
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.ships_choice(common.read_records(module.OUT, "*__*.json")), f"re-run or re-choose: python -m benchmarks.{name}"


def test_the_shipped_iteration_count_is_the_128_window_choice_too():
    """At 128 calibration windows the same rule keeps the shipped count (results/quality/iteration_draws_c128.md)."""
    study = it.STUDIES[128]
    assert it.ships_choice(common.read_records(study.out, "*__*.json"), study), \
        "re-run or re-choose: python -m benchmarks.iteration_draws --nsamples 128"


def test_the_shipped_128_window_damping_is_the_held_out_choice():
    """At 128 calibration windows the default's damping is what results/quality/damping_c128.md picks."""
    from benchmarks import damping_c128 as dc

    pick = dc.chosen(dc.by_damping(dc.OUT))
    assert pick is not None and pick == dc.shipped(), "re-run or re-choose: python -m benchmarks.damping_c128"
