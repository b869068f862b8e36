"""The PHO benchmark scripts build their tables from stored records only: ratios, merges, rho."""

import json
from pathlib import Path

import pytest

import benchmarks.pho_proxies as validate
import benchmarks.pho_search as bench
import benchmarks.pho_variants as variants


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


def test_variants_table_borrows_the_shared_climb_and_baselines_and_labels_each_variant(tmp_path):
    base = _summary(tmp_path, "0.5")
    base["quality"]["0.5"]["default"] = {"test_ppl": 37.0}
    e2e = _summary(tmp_path, "0.5", hc=False)  # a variant run: no climb, no default of its own
    e2e["args"].update({"proxy": "e2e", "e2e_windows": 2})
    crepe = {"alpha": 2.0, "beta": 0.5, "gamma": 0.0, "kernel": 5, "act_power": 1.25}
    Path(e2e["cost"]["0.5"]["pho"]["config"]).write_text(json.dumps({"proxy": "e2e", "crepe": crepe}))
    row = variants.rows(e2e, {"0.5": {"cost": base["cost"]["0.5"]["hillclimb"], "ppl": 35.0}}, {"0.5": {"default": 37.0}})
    assert row == [("| proxy e2e, 2 windows | 0.5 | 36.00 | 0.900 | 0.973 | 1.029 | – | 2 × 3.0 | 10 | 30.0× | "
                    "e2e: α=2 β=0.5 γ=0 k=5 a=1.25 |")]


def test_a_cached_test_report_pruned_with_another_config_is_run_again(tmp_path, monkeypatch):
    source = tmp_path / "pho_0p5.json"
    source.write_text(json.dumps({"crepe": {"alpha": 2.0}}))
    report = tmp_path / "test_2of4_transfer.json"
    stale = {"config": {"crepe": {"alpha": 0.5}}, "ppl_pruned": 99.0, "eval_protocol": "p", "realised_sparsity": 0.5}
    report.write_text(json.dumps(stale))
    commands = []

    def fake_run(cmd, log_path):
        commands.append(cmd)
        report.write_text(json.dumps({**stale, "config": {"crepe": {"alpha": 2.0}}, "ppl_pruned": 50.0}))
        return 1.0

    monkeypatch.setattr(bench, "run", fake_run)
    args = type("Args", (), {"model": "m", "nsamples": 8, "seqlen": 512, "dataset": "d", "test_windows": 24})()
    assert bench.test_ppl("transfer", "2:4", source, args, tmp_path)["test_ppl"] == 50.0
    assert len(commands) == 1 and str(source) in commands[0]
    assert bench.test_ppl("transfer", "2:4", source, args, tmp_path)["test_ppl"] == 50.0 and len(commands) == 1


def _speed_row(tmp_path, name, best, n, cpu_to_best, wall_to_best, cpu_per_trial, test_ppl):
    config = tmp_path / f"{name}.json"
    config.with_name(f"{name}_trials.json").write_text(json.dumps(
        {"trials": [{"number": i, "user_attrs": {"cpu_seconds": cpu_per_trial}} for i in range(n)]}))
    return {"config": str(config), "best_trial": best, "best_label": "searched", "trials": n, "test_ppl": test_ppl,
            "to_best_cpu_seconds": cpu_to_best, "to_best_seconds": wall_to_best,
            "total_cpu_seconds": 2 * cpu_to_best, "total_seconds": 2 * wall_to_best}


def test_speed_table_gives_measured_ratios_and_labels_the_extrapolation_apart(tmp_path):
    import benchmarks.pho_speed as speed

    rows = {"mf": _speed_row(tmp_path, "mf", 20, 40, 150, 300, 7.0, 35.0),
            "paper": _speed_row(tmp_path, "paper", 2, 4, 1350, 3000, 450.0, 35.7),
            "cheap": _speed_row(tmp_path, "cheap", 6, 12, 300, 600, 45.0, 36.0)}
    summary = {"provenance": {"command": "c", "commit": "x", "config_sha256": "0" * 16, "date": "2026-12-01"},
               "protocol": {"0.5": "p"}, "results": {"0.5": rows}}
    text = speed.markdown(summary)
    assert "| 0.5 | mf | 20 searched (40) | 35.00 | 0.980 | 150 (300) | 300 (600) | 9.0x (10.0x) | 2.0x (2.0x) |" in text
    assert "| 0.5 | hill climb, paper protocol (whole validation split) | evaluation 3 (4) |" in text
    extrapolated = text.split("EXTRAPOLATED, not measured")[1]
    assert "| 0.5 | mf | 3 of 4 | 450 | 7 (this run) | 3150 | 21.0x |" in extrapolated  # 7 cheap evaluations x 450 s / 150 s
    assert "shipped config" not in text  # no reference row until the test step measured it
    rows["cheap"] = _speed_row(tmp_path, "cheap", 3, 12, 300, 600, 45.0, 36.0)  # its best within the paper's 4
    assert "EXTRAPOLATED" not in speed.markdown(summary)  # nothing to extrapolate: the paper climb got as far
    summary["reference"] = {"0.5": {"test_ppl": 37.49}}
    assert "| 0.5 | no search: crepe's shipped config | - | 37.49 | 1.050 |" in speed.markdown(summary)  # / 35.7


def test_speed_commands_parse_with_the_commands_they_run(tmp_path):
    import benchmarks.pho_speed as speed
    from benchmarks.resolve import resolve

    args = speed.build_parser().parse_args(["--work-dir", str(tmp_path), "--warm-start", "default"])
    for kind in ("mf", "mf-warm", "paper", "cheap"):
        resolved = resolve(speed.search_command(kind, "2:4", args)[1])
        assert resolved["objective"]["pattern"] == "2:4"
    assert resolve(speed.search_command("paper", "0.5", args)[1])["objective"]["val_windows"] == 0


def test_proxy_validation_under_an_update_prunes_the_ppl_side_with_it_and_keeps_the_mask_only_e2e(
        tiny_folder, tiny_corpus, tmp_path, monkeypatch):
    """``--update sweep-admm``: its own JSON, e2e with the update and e2e/none without it, per-linear proxies
    on the masks; the planned config names the update, so the records resolve as current."""
    import sys

    argv = ["--model", str(tiny_folder), "--dataset", tiny_corpus, "--nsamples", "4", "--seqlen", "32",
            "--cache-dir", str(tmp_path / "cache"), "--configs", "2", "--patterns", "2:4", "--update", "sweep-admm",
            "--strides", "", "--e2e-windows", "", "--val-windows", "2", "--val-seqlen", "32", "--out-dir",
            str(tmp_path / "out")]
    at = argv.index("--update")
    mask_only = argv[:at] + argv[at + 2:]
    monkeypatch.setattr(sys, "argv", ["validate_pho_proxies.py", *mask_only])  # the mask-only run first
    validate.main()
    kept = (tmp_path / "out" / "proxy_validation.json").read_text()
    monkeypatch.setattr(sys, "argv", ["validate_pho_proxies.py", *argv])
    validate.main()
    assert (tmp_path / "out" / "proxy_validation.json").read_text() == kept  # the update run writes its own JSON
    results = json.loads((tmp_path / "out" / "proxy_validation_sweep-admm.json").read_text())
    before = json.loads((tmp_path / "out" / "proxy_validation.json").read_text())["configs"]
    assert all(r["proxies"]["ppl/none"] == before[k]["val_ppl"] != r["val_ppl"] for k, r in results["configs"].items())
    assert "ppl/none" in results["spearman"]["2:4"]
    rows = list(results["configs"].values())
    assert len(rows) == 3 and all({"e2e", "e2e/none", "recon", "gini"} <= set(r["proxies"]) for r in rows)
    assert all(r["proxies"]["e2e"] != r["proxies"]["e2e/none"] for r in rows)  # the update changes the model
    assert "e2e/none" in results["spearman"]["2:4"]
    assert (tmp_path / "out" / "proxy_validation_sweep-admm.md").is_file()
    planned = validate.planned(argv)
    assert validate.recorded(argv).keys() == planned.keys()
    assert all(v["config"]["update"] == "sweep-admm" for v in planned.values())
    assert all(validate.recorded(argv)[k]["config"] == v["config"] for k, v in planned.items())
    skip = [*argv[:-1], str(tmp_path / "skip"), "--skip-e2e-update"]  # the committed table's form
    monkeypatch.setattr(sys, "argv", ["validate_pho_proxies.py", *skip])
    validate.main()
    rows = json.loads((tmp_path / "skip" / "proxy_validation_sweep-admm.json").read_text())["configs"].values()
    assert all("e2e/none" in r["proxies"] and "e2e" not in r["proxies"] for r in rows)
