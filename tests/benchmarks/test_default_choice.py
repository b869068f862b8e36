"""The rule that picks crepe's admm-grad defaults from the held-out text (benchmarks.default_choice)."""

from benchmarks import default_choice as dc
from benchmarks.common import SELECTION_TEXT


def _records(ppl_of):
    return {dc.cell_name(s, *c): {"ppl": {SELECTION_TEXT: ppl_of(c)}} for s in dc.SETTINGS for c in dc.CANDIDATES}


def test_the_cheapest_candidate_within_the_tolerance_wins():
    best = (0.5, 0.3, 1.0, 20, 1.0, None)
    cheap = (0.5, 0.3, 1.0, 12, 1.0, None)
    near = _records(lambda c: 100.0 if c == best else 101.5 if c == cheap else 120.0)  # 1.5% behind
    assert dc.chosen(near) == cheap
    far = _records(lambda c: 100.0 if c == best else 103.0 if c == cheap else 120.0)  # 3% behind
    assert dc.chosen(far) == best


def test_a_smaller_dense_share_beats_fewer_iterations_and_no_setting_complete_means_no_choice():
    tied = _records(lambda c: 100.0)
    assert dc.chosen(tied) == (0.5, 0.3, 0.5, 20, 1.0, None)
    assert dc.chosen({}) is None


def test_relaxed_rows_are_timed_against_the_relaxed_15_iteration_row_of_their_run():
    assert dc.cpu_reference((0.5, 0.3, 1.0, 10, 1.5, None), "0.7") == dc.cell_name("0.7", 0.5, 0.3, 1.0, 15, 1.5)
    assert dc.cpu_reference((0.5, 0.3, 1.0, 12, 1.0, None), "0.7") == dc.cell_name("0.7", *dc.PUBLISHED)
    assert dc.cpu_reference((0.5, 0.3, 1.0, 12, 1.0, 11), "0.7") == "again_damp0.5_dense0.3_it15__0.7"
    planned = dc.cells("smollm2-135m", dc.SETTINGS)
    assert all(dc.cpu_reference(c, s) in planned for c in dc.CANDIDATES for s in dc.SETTINGS)


def test_the_control_is_a_candidate_and_its_again_cells_pin_the_same_config():
    assert dc.CONTROL in dc.CANDIDATES and dc.decided(dc.CONTROL) == dc.decided(dc.shipped())
    again = dc.cells("smollm2-135m", ("2:4",))[dc.control_name("2:4")]
    assert again.prune == dc.cells("smollm2-135m", ("2:4",))[dc.cell_name("2:4", *dc.CONTROL)].prune
    assert (again.prune.admm_grad_iterations, again.prune.admm_grad_select_iterations) == (15, None)
    assert dc.chosen(_records(lambda c: 100.0)) in dc.CANDIDATES


def test_a_choosing_count_names_its_own_cells_and_older_cells_keep_their_names():
    assert dc.cell_name("0.7", 0.5, 0.3, 1.0, 15, 1.5, None) == "damp0.5_dense0.3_it15_relax1.5__0.7"
    assert dc.cell_name("2:4", 0.5, 0.3, 1.0, 12, 1.0, 11) == "damp0.5_dense0.3_it12_choose11__2-4"


def test_the_pick_is_judged_on_the_fields_it_decides_not_on_its_iterations():
    thirteen = (0.5, 0.3, 1.0, 13, 1.0, 11)
    assert dc.verdict(dc.CONTROL, dc.CONTROL).startswith("the same")
    assert dc.verdict(thirteen, dc.CONTROL).startswith("the same")  # iterations: benchmarks.iteration_draws
    assert dc.verdict(dc.PUBLISHED, dc.CONTROL).startswith("DIFFERENT")
    assert dc.ships_choice(_records(lambda c: 100.0 if c == thirteen else 120.0))
    assert not dc.ships_choice(_records(lambda c: 100.0 if c == dc.PUBLISHED else 120.0))
    assert not dc.ships_choice({})
