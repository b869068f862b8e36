"""benchmarks.dense_windows: the dense stream capped at 16 windows, judged at 128 against every window."""

import pytest

from benchmarks import dense_windows as dw
from benchmarks.common import SELECTION_TEXT


def _records(ratio_of, settings=dw.SETTINGS):
    """(capped, reference) records: the uncapped prune at PPL 100, the capped one at 100 x ratio_of(setting)."""
    capped = {dw.cell_name(s): {"ppl": {SELECTION_TEXT: 100.0 * ratio_of(s)}} for s in settings}
    reference = {dw.reference_name(s): {"ppl": {SELECTION_TEXT: 100.0}} for s in dw.SETTINGS}
    return capped, reference


def test_the_cap_matches_within_both_tolerances_and_only_once_every_setting_ran():
    assert dw.matches(*_records(lambda s: 1.015)) is True
    assert dw.matches(*_records(lambda s: 0.9 if s == "0.5" else 1.04)) is True  # the mean decides, within 5% each
    assert dw.matches(*_records(lambda s: 1.03)) is False  # overall 3% worse
    assert dw.matches(*_records(lambda s: 1.06 if s == "0.7" else 0.98)) is False  # one setting 6% worse
    assert dw.matches(*_records(lambda s: 1.0, settings=("2:4",))) is None


@pytest.mark.parametrize("ratio", [1.0, 1.10])
def test_the_shipped_cap_must_be_the_rules_pick(ratio, monkeypatch):
    records = _records(lambda s: ratio)
    pick = dw.CAP if ratio == 1.0 else None
    monkeypatch.setattr(dw.PruneConfig, "dense_windows", pick)
    assert dw.ships_choice(*records)
    monkeypatch.setattr(dw.PruneConfig, "dense_windows", dw.CAP if pick is None else None)
    assert not dw.ships_choice(*records)
    assert not dw.ships_choice({}, records[1])


def test_cells_pin_the_count_and_the_cap_at_128_windows_and_the_reference_is_the_128_window_6_5_cell():
    opts = dw.cells("smollm2-135m", ("2:4",))[dw.cell_name("2:4")]
    assert (opts.nsamples, opts.seed, opts.prune.dense_windows) == (128, 0, 16)
    assert (opts.prune.admm_grad_iterations, opts.prune.admm_grad_select_iterations) == dw.REFERENCE_COUNT
    assert dw.reference_name("2:4") == "it6_choose5__seed0__2-4" and dw.REFERENCE.nsamples == 128
