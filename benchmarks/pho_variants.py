"""One table over the PHO variants measured by benchmarks.pho_search (proxy, stride, searched params).

Reads bench summaries (the JSON files bench_pho.py writes with --out or --merge) and writes, per
variant and target: the searched config's TEST PPL against RIA, the shipped crepe default and the
hill climb (same protocol, same run directory), the search cost and the cost ratio, and the config.

    python -m benchmarks.pho_variants results/pho/bench.json results/pho/bench_e2e.json \\
        --out results/pho/variants.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crepe.io.files import read_json
from crepe.io.provenance import current_command, markdown_stamp, provenance


def variant_label(args: dict, proxy: str) -> str:
    """A readable name of what a bench run searched with: the resolved proxy, stride, params, e2e windows."""
    parts = [f"proxy {proxy}"]
    if args.get("layer_stride", 1) != 1:
        parts.append(f"stride {args['layer_stride']}")
    if args.get("params"):
        parts.append(f"params {args['params']}")
    if args.get("e2e_windows"):
        parts.append(f"{args['e2e_windows']} windows")
    return ", ".join(parts)


def config_text(path: str) -> str:
    record = read_json(path)
    c = record["crepe"]
    return (f"{record.get('proxy', '?')}: α={c['alpha']:.2g} β={c['beta']:.2g} γ={c['gamma']:.2g} k={c['kernel']} "
            f"a={c['act_power']:.2f}")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else "–"


def rows(summary: dict, hillclimbs: dict[str, dict], shared: dict[str, dict[str, float]]) -> list[str]:
    out = []
    for target, quality in summary["quality"].items():
        ppl = {**shared.get(target, {}), **{k: v.get("test_ppl") for k, v in quality.items()}}
        cost = summary["cost"][target]
        hc_cost = cost.get("hillclimb") or hillclimbs.get(target, {}).get("cost")
        hc_ppl = ppl.get("hillclimb") or hillclimbs.get(target, {}).get("ppl")
        pho = cost["pho"]
        label = variant_label(summary.get("args", {}), read_json(pho["config"]).get("proxy", "?"))
        trials = read_json(Path(pho["config"]).with_name(Path(pho["config"]).stem + "_trials.json"))["trials"]
        seconds = [t["seconds"] for t in trials if t["seconds"] is not None]
        speed = f"{hc_cost['to_best_seconds'] / pho['total_seconds']:.1f}×" if hc_cost else "–"
        transfer = f"{ppl['transfer']:.2f}" if ppl.get("transfer") else "–"
        cells = [label, target, f"{ppl['pho']:.2f}", ratio(ppl["pho"], ppl.get("ria")), ratio(ppl["pho"], ppl.get("default")),
                 ratio(ppl["pho"], hc_ppl), transfer, f"{len(trials)} × {sum(seconds) / max(len(seconds), 1):.1f}",
                 f"{pho['total_seconds']:.0f}", speed, config_text(pho["config"])]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summaries", nargs="+", help="bench_pho.py summary JSON files")
    ap.add_argument("--out", default="results/pho/variants.md")
    args = ap.parse_args()
    summaries = [read_json(p) for p in args.summaries]
    hillclimbs, shared = {}, {}  # climbs, RIA and default runs are shared by the variants of one work dir
    for s in summaries:
        for target, quality in s["quality"].items():
            shared.setdefault(target, {}).update({k: quality[k]["test_ppl"] for k in ("ria", "default") if k in quality})
        for target, cost in s["cost"].items():
            if "hillclimb" in cost:
                hillclimbs[target] = {"cost": cost["hillclimb"], "ppl": s["quality"][target]["hillclimb"]["test_ppl"]}
    sources = {p: s.get("provenance", {}).get("config_sha256") for p, s in zip(args.summaries, summaries)}
    lines = [markdown_stamp(provenance(current_command(), {"summaries": sources})), "",
             f"Protocol (first summary): {summaries[0]['protocol']}", "",
             ("| variant | target | PHO test PPL | / RIA | / crepe default | / hill climb | first target's config "
              "transferred | trials × s/trial | PHO total (s) | hill-climb-to-best / PHO total | config found |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines += rows(s, hillclimbs, shared)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
