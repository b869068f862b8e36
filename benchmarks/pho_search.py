"""PHO vs PPL hill climbing: search cost, test-split quality, transfer. Every figure from one run.

For each target (an unstructured sparsity such as 0.5 or an N:M pattern such as 2:4):
1. ``python -m pho.search`` (fresh statistics cache, so its one dense calibration pass is counted);
2. ``python -m pho.hillclimb`` on validation PPL, for the targets in ``--hc-targets``;
3. ``python -m crepe.prune`` with the faithful sequential engine and TEST-split perplexity for:
   RIA, crepe+PHO-best (searched at that target), crepe+PHO-best of the first target applied unchanged
   (transfer), and crepe+hill-climb-best where a climb ran.
Search cost: wall time of each command from launch to the completion time of its best trial
("to best") and to its end ("total"); ratio = hill climb to best / PHO total. All commands run as
subprocesses with the same flags; outputs go under ``--work-dir`` and the summary to ``--out``.
Resumable: a step whose output file exists is not run again.

    OMP_NUM_THREADS=1 python -m benchmarks.pho_search --targets 0.5,0.6,0.7,2:4,4:8 --hc-targets 0.5,2:4
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.resolve import planned_prune, prune_report, resolve
from crepe.io.environment import versions
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.run.options import RunOptions, default_of


def target_flags(target: str) -> list[str]:
    return ["--pattern", target] if ":" in target else ["--sparsity", target]


def slug(target: str) -> str:
    return target.replace(":", "of").replace(".", "p")


def run(cmd: list[str], log_path: Path) -> float:
    """Run a command, tee its output into ``log_path``; returns the wall seconds. Fails loudly."""
    start = time.time()
    with open(log_path, "w") as log:
        print("$", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        raise SystemExit(f"command failed ({proc.returncode}), see {log_path}: {' '.join(cmd)}")
    return time.time() - start


def search_cost(best_json: Path, launched: float, wall: float) -> dict:
    """Seconds from launch to the best trial's completion, and to the end of the command."""
    trials = read_json(best_json.with_name(best_json.stem + "_trials.json"))["trials"]
    best = read_json(best_json)["trial"]
    done = next(t for t in trials if t["number"] == best)
    finished = dt.datetime.fromisoformat(done["start"]).timestamp() + (done["seconds"] or 0.0)
    return {"to_best_seconds": finished - launched, "total_seconds": wall, "trials": len(trials), "best_trial": best}


def common_flags(args: argparse.Namespace) -> list[str]:
    return ["--model", args.model, "--dataset", args.dataset, "--nsamples", str(args.nsamples),
            "--seqlen", str(args.seqlen), "--no-plots", "--log-level", "WARNING"]


def search_command(kind: str, target: str, args: argparse.Namespace, work: Path) -> tuple[Path, list[str]]:
    """(best-config path, command) of the pho.search or pho.hillclimb run at ``target``. PHO files carry
    the ``--variant`` name, so variants share one work dir (and its hill climbs) without clashing."""
    name = kind + (f"-{args.variant}" if kind == "pho" and args.variant else "")
    best = work / f"{name}_{slug(target)}.json"
    module = "pho.search" if kind == "pho" else "pho.hillclimb"
    flags = [*common_flags(args), "--storage", f"sqlite:///{work / f'{name}_{slug(target)}.db'}", "--study-name",
             f"{name}-{slug(target)}", "--best-config", str(best), *target_flags(target)]
    if kind == "pho":
        # a fresh statistics cache per search, so its one dense calibration pass is counted
        flags += ["--n-trials", str(args.pho_trials), "--sampler", args.sampler, "--proxy", args.proxy,
                  "--layer-stride", str(args.layer_stride), "--cache-dir", str(work / f"cache_{name}_{slug(target)}")]
        flags += ["--params", args.params] if args.params else []
        flags += ["--e2e-windows", str(args.e2e_windows)] if args.e2e_windows else []
    else:
        flags += ["--n-trials", str(args.hc_trials), "--val-windows", str(args.val_windows),
                  "--cache-dir", str(work / f"cache_hc_{slug(target)}")] + (["--faithful"] if args.hc_faithful else [])
    return best, ["python", "-m", module, *flags]


def trials_path(best: Path) -> Path:
    return best.with_name(best.stem + "_trials.json")


def searched(kind: str, target: str, args, work: Path) -> dict:
    """Run pho.search or pho.hillclimb at ``target`` once; returns its cost record (with provenance)."""
    best, cmd = search_command(kind, target, args, work)
    cost_file = best.with_suffix(".cost.json")
    if cost_file.exists():
        return read_json(cost_file)
    launched = time.time()
    wall = run([sys.executable, *cmd[1:]], best.with_suffix(".log"))
    cost = {**search_cost(best, launched, wall), "config": str(best), "provenance": provenance(cmd, resolve(cmd))}
    write_json_atomic(cost_file, cost)
    return cost


DEFAULT = "default"  # test_ppl config meaning crepe's shipped defaults (no --config)


def test_command(label: str, target: str, config: Path | str | None, args, work: Path) -> tuple[Path, list[str]]:
    """(report path, crepe.prune command) of a faithful prune + TEST-split PPL: RIA for config None,
    crepe's defaults for DEFAULT, else crepe with ``--config``."""
    report = work / f"test_{slug(target)}_{label}.json"
    method = (["--method", "ria"] if config is None else ["--method", "crepe"] if config == DEFAULT
              else ["--method", "crepe", "--config", str(config)])
    return report, ["python", "-m", "crepe.prune", "--model", args.model, *method, *target_flags(target),
                    "--nsamples", str(args.nsamples), "--seqlen", str(args.seqlen), "--calib-dataset", args.dataset,
                    "--eval-dataset", args.dataset, "--eval-split", "test", "--max-eval-windows", str(args.test_windows),
                    "--skip-dense-eval", "--report", str(report)]


def test_ppl(label: str, target: str, config: Path | str | None, args, work: Path) -> dict:
    """Faithful prune + TEST-split PPL through crepe.prune; cached in its report file."""
    report, cmd = test_command(label, target, config, args, work)
    if report.exists() and config not in (None, DEFAULT) and read_json(report)["config"]["crepe"] != read_json(config)["crepe"]:
        print(f"{report} was pruned with another config than {config}: running it again", flush=True)
        report.unlink()  # e.g. a transfer label reused with a different --transfer-from
    if not report.exists():
        run([sys.executable, *cmd[1:]], report.with_suffix(".log"))
    rep = read_json(report)
    return {"test_ppl": rep["ppl_pruned"], "protocol": rep["eval_protocol"], "realised_sparsity": rep["realised_sparsity"]}


def runs(args: argparse.Namespace) -> list[tuple[str, str, Path | str | None]]:
    """(target, label, config) of every test-split run this command makes, with 'search:pho' and
    'search:hillclimb' labels for the searches (config = their best-config path)."""
    work, sfx = Path(args.work_dir), f"-{args.variant}" if args.variant else ""
    hc_targets = [t for t in args.hc_targets.split(",") if t]
    source, out = Path(args.transfer_from) if args.transfer_from else None, []
    for target in args.targets.split(","):
        best = search_command("pho", target, args, work)[0]
        out += [(target, "search:pho", best), (target, "ria", None), (target, "crepe-default", DEFAULT),
                (target, f"pho{sfx}", best)]
        source = source or best
        if best != source:
            out.append((target, f"transfer{sfx}", source))
        if target in hc_targets:
            climb = search_command("hillclimb", target, args, work)[0]
            out += [(target, "search:hillclimb", climb), (target, "hillclimb", climb)]
    return out


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path (trial logs, test reports) -> {command, config it resolves to now}. A test run whose
    --config file does not exist yet (its search has not run) cannot be resolved and is left out."""
    args = build_parser().parse_args(argv)
    work, out = Path(args.work_dir), {}
    for target, label, config in runs(args):
        if label.startswith("search:"):
            best, cmd = search_command(label.split(":")[1], target, args, work)
            out[str(trials_path(best))] = {"command": cmd, "config": resolve(cmd)}
        elif config in (None, DEFAULT) or Path(config).is_file():
            report, cmd = test_command(label, target, config, args, work)
            out[str(report)] = planned_prune(cmd)
    return out


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as recorded (a search's study attributes, a report's config)."""
    out = {}
    for path in planned(argv):
        if path.endswith("_trials.json") and Path(path).is_file():
            cost = Path(path.removesuffix("_trials.json") + ".cost.json")
            prov = read_json(cost).get("provenance", {}) if cost.is_file() else {}
            out[path] = {"command": prov.get("argv"), "config": read_json(path)["attrs"]}
        elif (rec := prune_report(path)):
            out[path] = rec
    return out


def trial_seconds(config: str) -> tuple[int, float]:
    """(number of trials, mean seconds per trial) from a search's trial log."""
    trials = read_json(Path(config).with_name(Path(config).stem + "_trials.json"))["trials"]
    seconds = [t["seconds"] for t in trials if t["seconds"] is not None]
    return len(trials), sum(seconds) / max(len(seconds), 1)


def markdown(summary: dict) -> str:
    lines = [markdown_stamp(summary["provenance"]), ""] if "provenance" in summary else []
    lines += [f"Protocol: {summary['protocol']}", "", ("| target | RIA | crepe (default config) | crepe+PHO (searched "
             f"here) | crepe+PHO-{summary['transfer_source']} transferred | crepe+hill-climb | PHO / RIA | PHO / hill climb |"),
             "|---|---|---|---|---|---|---|---|"]
    for target, row in summary["quality"].items():
        ria, default, pho, transfer, hc = (row.get(k, {}).get("test_ppl")
                                           for k in ("ria", "default", "pho", "transfer", "hillclimb"))
        cells = [f"{c:.3f}" if c else "-" for c in (ria, default, pho, transfer, hc)]
        cells += [f"{pho / ria:.3f}" if ria else "-", f"{pho / hc:.3f}" if hc else "-"]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    lines += ["", ("| target | PHO proxy | PHO trials x s/trial | PHO to best (s) | PHO total (s) | hill-climb evaluations x s/eval "
                   "| hill climb to best (s) | hill climb total (s) | ratio hill-climb-to-best / PHO total |"),
              "|---|---|---|---|---|---|---|---|---|"]
    for target, cost in summary["cost"].items():
        pho, hc = cost["pho"], cost.get("hillclimb")
        n, sec = trial_seconds(pho["config"])
        cells = [read_json(pho["config"]).get("proxy", "-"), f"{n} x {sec:.1f}", f"{pho['to_best_seconds']:.0f}", f"{pho['total_seconds']:.0f}"]
        if hc:
            hn, hsec = trial_seconds(hc["config"])
            cells += [f"{hn} x {hsec:.1f}", f"{hc['to_best_seconds']:.0f}", f"{hc['total_seconds']:.0f}",
                      f"{hc['to_best_seconds'] / pho['total_seconds']:.1f}x"]
        else:
            cells += ["-"] * 4
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def merge(paths: list[str], out: str) -> dict:
    """One summary from several runs of this script with the same protocol (e.g. targets split over
    two processes); their targets must not overlap."""
    runs = [read_json(p) for p in paths]
    own = {"targets", "hc_targets", "out", "transfer_from", "proxy", "merge"}  # may differ per run
    shared = [{k: v for k, v in r.get("args", {}).items() if k not in own and v not in (None, "")} for r in runs]
    if any(a != shared[0] for a in shared) or len({r["transfer_source"] for r in runs}) != 1:
        raise SystemExit("cannot merge runs with different protocols or transfer sources")
    summary = {**runs[-1], "targets": [t for r in runs for t in r["targets"]], "merged_from": paths}
    for key in ("cost", "quality"):
        summary[key] = {t: v for r in runs for t, v in r[key].items()}
    write_json_atomic(out, summary)
    Path(out).with_suffix(".md").write_text(markdown(summary))
    return summary


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dataset", default="wikivital")
    ap.add_argument("--targets", default="0.5,0.6,0.7,2:4,4:8", help="first one is the transfer source")
    ap.add_argument("--hc-targets", default="0.5,2:4", help="targets that also get a hill climb ('' for none)")
    ap.add_argument("--pho-trials", type=int, default=100)
    ap.add_argument("--hc-trials", type=int, default=60)
    ap.add_argument("--sampler", default="cmaes")
    ap.add_argument("--proxy", default="auto", help="pho.search --proxy (auto: e2e unstructured, e2e_seq N:M)")
    ap.add_argument("--params", default="", help="pho.search --params (default: all of its space)")
    ap.add_argument("--layer-stride", type=int, default=1, help="PHO proxy on every K-th linear (pho.search flag)")
    ap.add_argument("--e2e-windows", type=int, default=None, help="pho.search --e2e-windows (e2e proxies only)")
    ap.add_argument("--hc-faithful", action="store_true", help="hill climb prunes with the sequential engine")
    ap.add_argument("--transfer-from", default=None, help="config JSON to transfer (default: PHO-best of the first target)")
    ap.add_argument("--nsamples", type=int, default=default_of(RunOptions, "nsamples"))
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--val-windows", type=int, default=8)
    ap.add_argument("--test-windows", type=int, default=100000, help="test windows (default: the whole split)")
    ap.add_argument("--work-dir", default="results/pho/bench")
    ap.add_argument("--out", default="results/pho/bench.json")
    ap.add_argument("--variant", default="", help="name of a PHO variant (e.g. s3 for --layer-stride 3): its files "
                    "get this suffix and it reuses the hill climbs and RIA runs already in --work-dir")
    ap.add_argument("--merge", default=None, help="only merge these comma-separated summaries into --out")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    if args.merge:
        print(markdown(merge(args.merge.split(","), args.out)))
        return
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    climb = "faithful" if args.hc_faithful else "one-shot"
    protocol = (f"model={args.model} calibration={args.dataset} nsamples={args.nsamples} seqlen={args.seqlen}; PHO "
                f"{args.pho_trials} trials ({args.sampler}, proxy {args.proxy}, layer stride {args.layer_stride}"
                f"{f', e2e windows {args.e2e_windows}' if args.e2e_windows else ''}); "
                f"hill climb {args.hc_trials} evaluations of {climb} prune + validation PPL ({args.val_windows} "
                f"windows); quality: faithful prune, test split, {args.test_windows} windows max")
    print("protocol:", protocol, flush=True)
    summary = {"protocol": protocol, "targets": args.targets.split(","), "cost": {}, "quality": {}, "args": vars(args),
               "versions": versions()}
    for target, label, config in runs(args):
        cost, row = summary["cost"].setdefault(target, {}), summary["quality"].setdefault(target, {})
        if label.startswith("search:"):
            cost[label.split(":")[1]] = searched(label.split(":")[1], target, args, work)
            summary["transfer_source"] = Path(args.transfer_from).stem if args.transfer_from else summary.get(
                "transfer_source", Path(cost["pho"]["config"]).stem)
        else:
            key = label.split("-")[0] if label.startswith(("pho", "transfer")) else (
                "default" if label == "crepe-default" else label)
            row[key] = test_ppl(label, target, config, args, work)
        command = current_command()
        summary["provenance"] = provenance(command, {p: v["config"] for p, v in planned(sys.argv[1:]).items()})
        write_json_atomic(args.out, summary)
    Path(args.out).with_suffix(".md").write_text(markdown(summary))
    print(markdown(summary))
    print(json.dumps({t: {k: v["test_ppl"] for k, v in r.items()} for t, r in summary["quality"].items()}))


if __name__ == "__main__":
    main()
