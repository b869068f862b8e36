"""benchmarks.solve_cost: the admm-grad solve timed alone per iteration count."""

import pytest
from tiny_models import tiny_model

from benchmarks import solve_cost
from crepe.models.adapters import get_adapter, weight_view


def test_counts_parse_with_the_default_choosing_share():
    assert solve_cost.parse_count("13/11") == (13, 11)
    assert solve_cost.parse_count("15") == (15, 11)


def test_each_linear_of_the_layer_gets_its_own_weight_hessian_and_shift():
    model = tiny_model()
    linears = get_adapter(model).linears(get_adapter(model).layers(model)[0])
    problems = solve_cost.problems(model, 0)
    assert len(problems) == len(linears)
    for (weight, hessian, shift), module in zip(problems, linears.values()):
        assert weight.shape == weight_view(module).shape == shift.shape
        assert hessian.shape == (weight.shape[1], weight.shape[1]) and bool((hessian.diagonal() > 0).all())
    assert solve_cost.solve_seconds(problems, "2:4", 4, 3) >= 0.0


def test_a_bfloat16_solve_is_timed_and_an_unknown_precision_exits(monkeypatch):
    problems = solve_cost.problems(tiny_model(), 0)
    assert solve_cost.solve_seconds(problems, "0.7", 3, 2, "bfloat16") >= 0.0
    monkeypatch.setattr("sys.argv", ["solve_cost", "--products", "float32,float16"])
    with pytest.raises(SystemExit, match=r"unknown --products \['float16'\]"):
        solve_cost.main()
