"""benchmarks.dense_precision: the dense forward's precision, chosen on the selection text."""

import pytest

from benchmarks import dense_precision as dp
from benchmarks.common import SELECTION_TEXT
from crepe.config import PruneConfig


def _table(ppl_of):
    """Precision -> setting -> a record whose selection PPL is ppl_of(precision, setting)."""
    return {p: {s: {"ppl": {SELECTION_TEXT: ppl_of(p, s)}} for s in dp.SETTINGS} for p in dp.PRECISIONS}


@pytest.mark.parametrize(("low", "pick"), [(101.9, "bfloat16"), (97.0, "bfloat16"), (102.1, "float32")])
def test_bfloat16_is_taken_within_two_percent_of_float32(low, pick):
    assert dp.chosen(_table(lambda p, s: low if p == "bfloat16" else 100.0)) == pick


def test_no_pick_until_both_precisions_have_every_setting():
    table = _table(lambda p, s: 100.0)
    del table["bfloat16"]["0.7"]
    assert dp.geometric_mean(table["bfloat16"]) is None and dp.chosen(table) is None


def test_cells_differ_only_in_the_dense_precision_and_pin_the_rest():
    plan = dp.cells("smollm2-135m", ("2:4",))
    assert list(plan) == [dp.cell_name("2:4", p) for p in dp.PRECISIONS]
    full, low = (plan[dp.cell_name("2:4", p)].resolved_prune for p in dp.PRECISIONS)
    assert (full.dense_precision, low.dense_precision) == ("float32", "bfloat16")
    assert full.admm_grad_products == low.admm_grad_products == dp.PRODUCTS
    fixed = PruneConfig().at_calibration(16 * 512)
    assert (low.admm_grad_damp, low.dense_target, low.admm_grad_iterations) == (
        fixed.admm_grad_damp, fixed.dense_target, fixed.admm_grad_iterations)
    assert dp.shipped() == "bfloat16"
