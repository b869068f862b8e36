"""The mask-only score check's plan and rule, without a prune."""

from benchmarks import mask_choice
from benchmarks.common import SELECTION_TEXT


def test_plan_prunes_mask_only_with_each_candidates_score(tmp_path):
    plan = mask_choice.planned(["--settings", "2:4", "--out-dir", str(tmp_path)])
    assert len(plan) == len(mask_choice.CANDIDATES)
    cfg = plan[str(tmp_path / "a0.75_g0.01__2-4.json")]["config"]["prune_config"]
    assert cfg["update"] == "none" and cfg["crepe"]["act_power"] == 0.75 and cfg["crepe"]["gamma"] == 0.01


def test_rule_takes_the_lowest_geometric_mean_over_complete_settings():
    ppl = {(0.5, 0.0): (30, 60, 100), (0.75, 0.0): (31, 55, 101), (1.0, 0.0): (29, 70, 90),
           (0.75, 0.01): (40, 80, 120), (1.0, 0.01): (40, 80, 120)}
    records = {mask_choice.cell_name(s, *c): {"ppl": {SELECTION_TEXT: v[i]}}
               for c, v in ppl.items() for i, s in enumerate(("0.5", "2:4", "0.7"))}
    assert mask_choice.chosen(records) == (0.75, 0.0)  # 31*55*101 < 30*60*100 < 29*70*90
    records.update({mask_choice.cell_name("4:8", *c): {"ppl": {SELECTION_TEXT: 50}} for c in ppl})
    records[mask_choice.cell_name("4:8", 0.5, 0.0)]["ppl"][SELECTION_TEXT] = 40
    assert mask_choice.chosen(records) == (0.5, 0.0)  # a complete setting joins the product: 30*60*100*40 is lowest
    del records[mask_choice.cell_name("4:8", 1.0, 0.0)]
    assert mask_choice.chosen(records) == (0.75, 0.0)  # 4:8 incomplete again: left out
    del records[mask_choice.cell_name("0.7", 1.0, 0.01)]
    assert mask_choice.chosen(records) == (0.75, 0.0)  # 0.5 and 2:4 only: 31*55 < 30*60
    assert mask_choice.chosen({}) is None
