"""benchmarks.damping_c128: the admm-grad damping at 128 calibration windows, chosen on the selection text."""

import pytest

from benchmarks import damping_c128 as dc
from benchmarks import iteration_draws as it
from benchmarks.common import SELECTION_TEXT


def _table(ppl_of):
    """Damping -> setting -> a record whose selection PPL is ppl_of(damping, setting)."""
    return {d: {s: {"ppl": {SELECTION_TEXT: ppl_of(d, s)}} for s in dc.SETTINGS} for d in (dc.REFERENCE, *dc.DAMPS)}


def test_the_lowest_mean_wins_and_a_tie_goes_to_the_lowest_too():
    assert dc.chosen(_table(lambda d, s: 100.0 + 10 * d)) == min(dc.DAMPS)
    assert dc.chosen(_table(lambda d, s: 100.0 - 10 * d)) == dc.REFERENCE
    # one setting's gain does not outweigh two settings' losses
    lower = min(dc.DAMPS)
    assert dc.chosen(_table(lambda d, s: (80.0 if s == "2:4" else 130.0) if d == lower else 100.0)) != lower


def test_no_pick_until_every_damping_has_every_setting():
    table = _table(lambda d, s: 100.0)
    del table[dc.DAMPS[0]]["0.5"]
    assert dc.geometric_mean(table[dc.DAMPS[0]]) is None and dc.chosen(table) is None


def test_cells_pin_the_comparison_and_the_reference_is_the_iteration_studys_cell():
    plan = dc.cells("smollm2-135m", ("2:4",))
    assert list(plan) == [dc.cell_name("2:4", d) for d in dc.DAMPS]
    for d in dc.DAMPS:
        cfg = plan[dc.cell_name("2:4", d)].resolved_prune
        assert (cfg.admm_grad_damp, cfg.dense_target, cfg.admm_grad_iterations, cfg.admm_grad_select_iterations) == (
            d, dc.DENSE_TARGET, *dc.COUNT)
    assert plan[dc.cell_name("2:4", 0.3)].nsamples == dc.NSAMPLES
    ref = it.cells("smollm2-135m", ("2:4",), (0,), it.STUDIES[dc.NSAMPLES], (dc.COUNT,))
    assert [o.resolved_prune.admm_grad_damp for o in ref.values()] == [dc.REFERENCE]
    assert dc.chosen_damps("0.15") == (0.15,)
    with pytest.raises(SystemExit, match="--damps"):
        dc.chosen_damps("0.2")
