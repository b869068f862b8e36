"""Generate README.md's figure blocks from results/ (between ``<!-- NAME:start -->`` / ``<!-- NAME:end -->``).

Every block starts with its source, the command that made it and whether today's code still
resolves that command to the recorded config (scripts/results_provenance.py). The test
tests/test_results_provenance.py fails when a block differs from what this script writes now, so
a hand edit or a re-run table that was not copied over is caught.

    python scripts/update_readme.py
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from results_provenance import Check, check, tables  # noqa: E402

from crepe.methods.params import CrepeParams  # noqa: E402


def _json(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text())


def _file(rel: str) -> Callable[[], str]:
    return lambda: (ROOT / rel).read_text().strip()


def _ppl(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}" if value >= 1000 else f"{value:.2f}"


def sweep_block() -> str:
    """Stage 2 of the default sweep (validation PPL, sequential engine), the choice and today's default."""
    results = _json("results/sweep_crepe.json")
    lines = [f"Validation split, {results['protocol']['stage2']}:", "", "| pattern | config | val PPL |", "|---|---|---|"]
    rows = sorted(results["stage2"].items(), key=lambda kv: (kv[0].split(" | ")[0] != "unstructured", kv[0]))
    lines += [f"| {k.split(' | ')[0]} | {k.split(' | ')[1]} | {v['val_ppl']:.2f} |" for k, v in rows]
    chosen, now = results["chosen"]["crepe"], CrepeParams()
    lines += ["", f"Chosen: **{results['chosen']['label']}** (mean log PPL ratio vs RIA "
              f"{results['chosen']['mean_log_ppl_ratio_vs_ria']:+.4f}). Today's default: α={now.alpha:g} β={now.beta:g} "
              f"γ={now.gamma:g} k={now.kernel} a={now.act_power:g}"
              + ("" if all(chosen[k] == getattr(now, k) for k in ("alpha", "beta", "gamma", "act_power")) else
                 " (**differs from the sweep's choice**)") + "."]
    return "\n".join(lines)


PROXY_COLUMNS = ("e2e", "recon", "gini", "diag_error", "gini_ref")


def proxy_block() -> str:
    """Spearman rho of each proxy with one-shot validation PPL, per pattern, and seconds per trial."""
    results = _json("results/pho/proxy_validation.json")
    lines = ["| pattern | configs | " + " | ".join(f"ρ({p})" for p in PROXY_COLUMNS) + " |",
             "|---|---|" + "---|" * len(PROXY_COLUMNS)]
    for pattern, row in results["spearman"].items():
        lines.append(f"| {pattern} | {row['n_configs']} | " + " | ".join(
            f"{row[p]['rho']:+.2f}" if row.get(p, {}).get("rho") is not None else "–" for p in PROXY_COLUMNS) + " |")
    trial = results["timing"]["trial_seconds"]
    lines += ["", "Seconds per trial alone: " + ", ".join(f"{k} {v:.1f}" for k, v in trial.items())
              + f"; one-shot prune + PPL {results['timing']['ppl_seconds']:.1f}."]
    return "\n".join(lines)


TARGETS = {"0.5": "50%", "0.6": "60%", "0.7": "70%", "2:4": "2:4", "4:8": "4:8"}


def variants_block() -> str:
    """Test PPL per target: RIA, crepe's default, PHO with the default and the per-linear proxies, PHO
    with 4 e2e windows, the hill climb; and the search cost against the climb's."""
    main = {t: _json("results/pho/bench_e2e.json" if ":" not in t else "results/pho/bench_e2eseq.json") for t in TARGETS}
    linear, wide = _json("results/pho/bench.json"), _json("results/pho/bench_e2eseq-w4.json")
    summaries = [*main.values(), linear, wide]

    def shared(target: str, key: str) -> float | None:
        return next((s["quality"][target][key]["test_ppl"] for s in summaries
                     if key in s["quality"].get(target, {})), None)

    def pho(summary: dict, target: str) -> tuple[float | None, str]:
        if target not in summary["quality"]:
            return None, ""
        proxy = json.loads((ROOT / summary["cost"][target]["pho"]["config"]).read_text()).get("proxy", "?")
        return summary["quality"][target]["pho"]["test_ppl"], proxy

    def climb_cost(target: str) -> float | None:
        return next((s["cost"][target]["hillclimb"]["to_best_seconds"] for s in summaries
                     if "hillclimb" in s["cost"].get(target, {})), None)

    lines = ["| target | RIA | crepe default | PHO, default proxy | PHO, per-linear proxy | PHO, e2e_seq 4 windows "
             "| hill climb | PHO / RIA | PHO / climb | PHO search s | climb to best s |", "|---" * 11 + "|"]
    for target, name in TARGETS.items():
        (p, proxy), (lp, lproxy), (wp, _) = pho(main[target], target), pho(linear, target), pho(wide, target)
        ria, climb = shared(target, "ria"), shared(target, "hillclimb")
        search = main[target]["cost"][target]["pho"]["total_seconds"]
        cells = [_ppl(ria), _ppl(shared(target, "default")), f"{_ppl(p)} (`{proxy}`)",
                 f"{_ppl(lp)} (`{lproxy}`)" if lp else "–", _ppl(wp), _ppl(climb),
                 f"{p / ria:.2f}×", f"{p / climb:.2f}×" if climb else "–", f"{search:,.0f}",
                 f"{climb_cost(target):,.0f}" if climb_cost(target) else "–"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


COMPOSE_ROWS = (("perm", ("2:4", "4:8")), ("owl", ("0.6", "0.7", "0.8")), ("alpha", ("0.6", "0.7", "0.8")),
                ("dsnot", ("0.5", "0.6", "0.7", "2:4")), ("all", ("4:8",)))


def compose_block() -> str:
    """PPL of each technique over the same scorer and setting without it (< 1: it helps)."""
    folder = ROOT / "results/compose/smollm2_small"
    settings = ("0.5", "0.6", "0.7", "0.8", "2:4", "4:8")

    def ppl(method: str, setting: str, technique: str) -> float | None:
        path = folder / f"{method}__{setting.replace(':', '-')}__{technique}.json"
        return json.loads(path.read_text())["ppl_pruned"] if path.is_file() else None

    lines = ["| scorer | technique | " + " | ".join(settings) + " |", "|---|---|" + "---|" * len(settings)]
    for method in ("ria", "crepe"):
        for technique, measured in COMPOSE_ROWS:
            cells = []
            for s in settings:
                value, base = ppl(method, s, technique), ppl(method, s, "plain")
                cells.append(f"{value / base:.2f}×" if s in measured and value and base else "")
            lines.append(f"| {method} | {technique} | " + " | ".join(cells) + " |")
    plain = [ppl(m, s, "plain") for m in ("ria", "crepe") for s in settings]
    lines += ["", "Plain PPL (no technique), RIA / CRePE: " + ", ".join(
        f"{s} {_ppl(ppl('ria', s, 'plain'))} / {_ppl(ppl('crepe', s, 'plain'))}" for s in settings
        if ppl("ria", s, "plain")) + (" (above 10⁴ every ratio means little)" if max(filter(None, plain)) > 1e4 else "")]
    return "\n".join(lines)


def vit_block() -> str:
    """Heads + TCS points of the ViT sweep (training-free and fine-tuned) and the repacked latency ratios."""
    sweep, lat = _json("results/vit/sweep.json"), _json("results/vit/latency.json")
    dense = next(r for r in sweep["rows"] if r["family"] == "dense")
    lines = [f"MNIST-5k test split ({sweep['test_images']} images); dense accuracy {dense['accuracy']:.3f}"
             + (f", {dense['accuracy_finetuned']:.3f} after the same fine-tune" if "accuracy_finetuned" in dense else "")
             + ".", "", "| heads | fc2 TCS | MACs vs dense | accuracy | after fine-tune |", "|---|---|---|---|---|"]
    for r in (r for r in sweep["rows"] if r["family"] == "both"):
        ft = f"{r['accuracy_finetuned']:.3f} ({r['finetune_epochs']} ep)" if "accuracy_finetuned" in r else "–"
        lines.append(f"| {r['config']['heads']['sparsity']:g} | {r['config']['tcs']['fc2_ratios'][0]:g} | "
                     f"{r['macs'] / r['macs_dense']:.3f} | {r['accuracy']:.3f} | {ft} |")
    lines += ["", f"Repacked / dense latency ({lat['threads']} thread): " + "; ".join(
        f"heads {c['head_sparsity']:g} + TCS {c['fc2_ratio']:g}: " + ", ".join(
            f"batch {row['batch']} ×{row['repacked_over_dense']:.2f}" for row in c["rows"]) for c in lat["configs"]) + "."]
    return "\n".join(lines)


def macs_block() -> str:
    """The analytic MAC counter next to the figures ToaSt publishes for DeiT."""
    rows = _json("results/vit/macs_deit.json")["rows"]
    lines = ["| model | setting | counted GMACs | published |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['setting']} | {r['gmacs']:.3f} | {r['published']:g} |" for r in rows]
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "methods-table": _file("results/methods.md"), "cost-table": _file("results/cost.md"),
    "sweep-table": sweep_block, "pho-proxy-table": proxy_block, "pho-variants-table": variants_block,
    "pho-speed-table": _file("results/pho/speed.md"), "pho-speed-update-table": _file("results/pho/speed_update.md"),
    "compose-table": compose_block, "vit-table": vit_block, "vit-macs-table": macs_block,
    "scale-table": _file("results/scale/llama-2-7b.md"), "memory-table": _file("results/scale/memory.md"),
}


def source_line(c: Check) -> str:
    t = c.table
    commands = " and ".join(f"`{cmd}`" for cmd in t.commands) if len(t.commands) <= 2 else (
        f"{len(t.commands)} `scripts/bench_pho.py` runs")
    status = (f"**made under older defaults**: {t.stale_note} ([results/PROVENANCE.md](results/PROVENANCE.md))" if c.stale else
              "current: its recorded configs are what this command gives today ([results/PROVENANCE.md](results/PROVENANCE.md))")
    return f"<sub>Source: `{t.path}` ← {commands}; {status}.</sub>"


def blocks(checks: dict[str, Check] | None = None) -> dict[str, str]:
    """Block name -> generated text (source line, blank line, body); ``checks`` (by table path) saves
    checking the tables again."""
    by_block = {t.readme: t for t in tables() if t.readme}
    missing = set(BLOCKS) - set(by_block)
    if missing:
        raise ValueError(f"README blocks without a results table: {sorted(missing)}")
    checks = checks or {}
    return {name: source_line(checks.get(by_block[name].path) or check(by_block[name])) + "\n\n" + make().strip()
            for name, make in BLOCKS.items()}


NOT_GENERATED = {"python-example"}  # README's Python example: code, run as written by tests/test_real_ecosystem.py


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with every ``<!-- name:start -->...<!-- name:end -->`` block replaced; an unknown or
    missing block is an error (so a renamed marker does not silently keep old figures)."""
    found = set(re.findall(r"<!-- ([\w-]+):start -->", text)) - NOT_GENERATED
    if found != set(generated):
        raise ValueError(f"README blocks {sorted(found)} do not match the generated {sorted(generated)}")
    for name, body in generated.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> None:
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text(), blocks()))
    print(f"updated {len(BLOCKS)} blocks in {readme}")


if __name__ == "__main__":
    main()
