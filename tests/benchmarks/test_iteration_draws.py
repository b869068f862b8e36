"""benchmarks.iteration_draws: fewer admm-grad iterations judged over calibration draws, and
benchmarks.convergence: the per-linear screen it follows."""

import torch

from benchmarks import convergence
from benchmarks import iteration_draws as it
from benchmarks.common import SELECTION_TEXT

FEWER = it.COUNTS[1]
FEWEST = min(it.COUNTS, key=lambda c: c[0])


def _records(ratio_of, settings=it.SETTINGS):
    """Every cell of ``settings``: the reference count at PPL 100, each other count c at 100 x
    ratio_of(setting, seed) (or ratio_of(setting, seed, c) when it takes three arguments)."""
    def ratio(s, seed, c):
        return ratio_of(s, seed, c) if ratio_of.__code__.co_argcount == 3 else ratio_of(s, seed)
    return {it.cell_name(s, seed, c): {"ppl": {SELECTION_TEXT: 100.0 * (1 if c == it.COUNTS[0] else ratio(s, seed, c))}}
            for s in settings for seed in it.SEEDS for c in it.COUNTS}


def test_the_fewest_iterations_within_the_tolerances_is_chosen():
    assert it.chosen(_records(lambda s, seed: 1.01)) == FEWEST
    # one draw 8% worse at 70%, the others better: the means decide, not one draw
    assert it.chosen(_records(lambda s, seed: 1.08 if (s, seed) == ("0.7", 0) else 0.99)) == FEWEST
    # the fewest loses: the next fewest that matches wins
    assert it.chosen(_records(lambda s, seed, c: 1.10 if c != FEWER else 1.0)) == FEWER


def test_a_count_over_either_tolerance_loses_to_the_default():
    assert it.chosen(_records(lambda s, seed: 1.03)) == it.COUNTS[0]  # overall mean 3% worse
    assert it.chosen(_records(lambda s, seed: 1.07 if s == "0.7" else 0.99)) == it.COUNTS[0]  # one setting 7% worse


def test_only_settings_with_every_seed_count_and_none_means_no_choice():
    partial = _records(lambda s, seed: 1.0, settings=("2:4",))
    del partial[it.cell_name("2:4", 2, FEWER)]
    assert it.ratios(partial, FEWER) == {} and it.chosen(partial) is None
    assert it.chosen({}) is None
    assert set(it.ratios(_records(lambda s, seed: 1.0, settings=("0.7",)), FEWER)) == {"0.7"}


def test_the_pick_must_be_shipped():
    assert it.verdict(it.shipped(), it.shipped()) == "the same"
    assert it.verdict(it.COUNTS[0], it.shipped()).startswith("DIFFERENT")
    only_shipped = _records(lambda s, seed, c: 1.0 if c == it.shipped() else 1.10)
    assert it.ships_choice(only_shipped) and not it.ships_choice({})
    assert not it.ships_choice(_records(lambda s, seed: 1.10))  # the reference's count would win: not shipped


def test_cells_pin_their_counts_and_seeds_and_the_shipped_count_is_one_of_them():
    plan = it.cells("smollm2-135m", ("0.7",))
    assert len(plan) == len(it.SEEDS) * len(it.COUNTS)
    opts = plan[it.cell_name("0.7", 2, FEWER)]
    assert (opts.seed, opts.prune.admm_grad_iterations, opts.prune.admm_grad_select_iterations) == (2, *FEWER)
    assert it.shipped() in it.COUNTS
    assert it.cell_name("2:4", 1, (10, 8)) == "it10_choose8__seed1__2-4"


def test_the_screen_scores_each_text_with_its_own_hessian():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(8, 16, generator=gen)
    x = torch.randn(64, 16, generator=gen)
    y = torch.randn(64, 16, generator=gen)
    hs = {"calibration": {"w": x.t() @ x}, "other": {"w": y.t() @ y}}
    totals, cpu = convergence.errors({"w": weight}, hs, "2:4", 4, 3)
    assert set(totals) == {"calibration", "other"} and cpu >= 0.0
    assert 0 < totals["calibration"] < 1 and totals["other"] > 0


def test_the_128_window_study_has_its_own_draws_counts_and_records():
    study = it.STUDIES[128]
    args, got, seeds, counts = it.parsed(["--nsamples", "128", "--counts", "6/5", "--settings", "2:4"])
    assert got is study and args.out_dir == study.out and seeds == study.seeds and counts == ((6, 5),)
    plan = it.cells("smollm2-135m", ("2:4",), seeds, study, counts)
    assert [o.nsamples for o in plan.values()] == [128] and list(plan) == [it.cell_name("2:4", 0, (6, 5))]
    # its rule: the fewest count decides alone when it matches; otherwise the next one must run
    recs = {it.cell_name(s, 0, c): {"ppl": {SELECTION_TEXT: 101.0 if c == (6, 5) else 100.0}}
            for s in it.SETTINGS for c in ((15, 11), (6, 5))}
    assert it.chosen(recs, study) == (6, 5)
    worse = {k: ({"ppl": {SELECTION_TEXT: 110.0}} if k.startswith("it6_") else v) for k, v in recs.items()}
    assert it.chosen(worse, study) is None  # 10/8 has not run
    assert it.chosen(worse | {it.cell_name(s, 0, (10, 8)): {"ppl": {SELECTION_TEXT: 100.5}} for s in it.SETTINGS},
                     study) == (10, 8)
    assert it.planned(["--nsamples", "128"]).keys() == {str(study.out / f"{n}.json") for n in it.cells(
        "smollm2-135m", it.SETTINGS, study=study)}
