"""The PHO benchmark scripts build their tables from stored records only: ratios, merges, rho."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load("bench_pho")
validate = load("validate_pho_proxies")


def _trials(path: Path, seconds: list[float]) -> str:
    path.write_text(json.dumps({"proxy": "recon"}))
    path.with_name(path.stem + "_trials.json").write_text(json.dumps(
        {"trials": [{"number": i, "seconds": s} for i, s in enumerate(seconds)]}))
    return str(path)


def _summary(tmp_path, target, hc=True):
    pho = _trials(tmp_path / f"pho_{target}.json", [2.0, 4.0])
    cost = {"pho": {"to_best_seconds": 5.0, "total_seconds": 10.0, "config": pho}}
    quality = {"ria": {"test_ppl": 40.0}, "pho": {"test_ppl": 36.0}}
    if hc:
        cost["hillclimb"] = {"to_best_seconds": 300.0, "total_seconds": 400.0,
                             "config": _trials(tmp_path / f"hc_{target}.json", [50.0, 70.0, 60.0])}
        quality["hillclimb"] = {"test_ppl": 35.0}
    return {"protocol": "p", "args": {"nsamples": 8, "targets": target}, "transfer_source": "pho_0p5", "targets": [target], "cost": {target: cost},
            "quality": {target: quality}}


def test_bench_table_states_quality_and_cost_ratios(tmp_path):
    text = bench.markdown(_summary(tmp_path, "0.5"))
    assert "| 0.5 | 40.000 | - | 36.000 | - | 35.000 | 0.900 | 1.029 |" in text
    assert "| 0.5 | recon | 2 x 3.0 | 5 | 10 | 3 x 60.0 | 300 | 400 | 30.0x |" in text


def test_merge_joins_targets_of_one_protocol_and_refuses_different_ones(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_summary(tmp_path, "0.5")))
    b.write_text(json.dumps(_summary(tmp_path, "2:4", hc=False)))
    merged = bench.merge([str(a), str(b)], str(tmp_path / "m.json"))
    assert merged["targets"] == ["0.5", "2:4"] and set(merged["quality"]) == {"0.5", "2:4"}
    assert "| 2:4 | 40.000 | - | 36.000 | - | - | 0.900 | - |" in (tmp_path / "m.md").read_text()
    other = _summary(tmp_path, "0.7")
    other["args"]["nsamples"] = 16
    b.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different protocols"):
        bench.merge([str(a), str(b)], str(tmp_path / "m2.json"))


def test_spearman_table_includes_stride_estimates_and_the_near_ria_subset():
    configs = {}
    for i, ppl in enumerate([10.0, 11.0, 12.0, 30.0, 13.0]):
        proxies = {name: float(i if ppl < 30 else 9) for name in validate.PROXIES}
        proxies["recon@s2"] = -float(i)
        configs[f"x|{i}"] = {"pattern": "x", "label": "ria" if i == 0 else f"r{i}", "val_ppl": ppl, "proxies": proxies}
    results = {"configs": configs}
    assert validate.proxy_names(results)[-1] == "recon@s2"
    table = validate.spearman_table(results, ["x"])
    assert table["x"]["n_configs"] == 5 and table["x"]["recon"]["rho"] == pytest.approx(1.0)
    assert table["x"]["recon@s2"]["rho"] == pytest.approx(-0.9)
    near = validate.spearman_table(results, ["x"], near=1.2)  # PPL <= 12: three configs
    assert near["x"]["n_configs"] == 3
