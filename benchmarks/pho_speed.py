"""PHO's time to its best config against two hill climbs, in one run per target, with test-split quality.

For each target (0.5, 2:4, ...), every step a subprocess with the same model, calibration and flags:
1. ``pho.search`` variants: ``mf`` multi-fidelity (``--pruner``, budget = calibration windows of the
   end-to-end proxy, most trials stopped after one window), ``mf-warm`` the same warm-started from
   ``--warm-start`` (the transferred config);
2. ``pho.hillclimb --faithful --val-windows 0``: the paper's protocol, every step a faithful prune
   scored by PPL over the WHOLE validation split (``--paper-trials`` evaluations at most);
3. ``pho.hillclimb --faithful --val-windows 8``: the cheap 8-window climb (``--cheap-trials``);
4. ``crepe.prune`` (faithful, TEST split) of each best config.

Time to best, two clocks: wall seconds from launch to the end of the best trial, and the process CPU
seconds of that command when its best trial ended (``process_cpu_seconds``, recorded per trial;
model loading and the statistics pass included). Totals: wall, and the child's CPU from getrusage.
CPU time is robust to other jobs on the machine; wall time is not. Ratios: climb / PHO, to best.
Resumable: a step whose record exists is not run again (``--steps`` runs a subset).

    OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.pho_speed --targets 0.5 --warm-start FILE
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from pathlib import Path

from benchmarks.pho_search import DEFAULT, run, slug, target_flags, test_command
from benchmarks.resolve import resolve
from crepe.io.environment import versions
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.registry import get_method
from crepe.run.options import RunOptions, default_of

CLIMBS = {"paper": "hill climb, paper protocol (whole validation split)", "cheap": "hill climb, 8 validation windows"}
STEPS = ("pho", "paper", "cheap", "test")


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def common_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--model", args.model, "--dataset", args.dataset, "--nsamples", str(args.nsamples), "--seqlen",
             str(args.seqlen), "--no-plots", "--log-level", "WARNING"]
    return flags + (["--update", args.update] if args.update else [])


def variants(args: argparse.Namespace) -> list[str]:
    return [v for v in args.pho_variants.split(",") if v]


def search_command(kind: str, target: str, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """(best-config path, command) of one search: a PHO variant (``mf``, ``mf-warm``) or a climb."""
    work, name = Path(args.work_dir), f"{kind}_{slug(target)}"
    best = work / f"{name}.json"
    flags = [*common_flags(args), *target_flags(target), "--storage", f"sqlite:///{work / (name + '.db')}",
             "--study-name", name, "--best-config", str(best), "--cache-dir", str(Path(args.cache_root) / name)]
    if kind in CLIMBS:
        trials, timeout = (args.paper_trials, args.paper_timeout) if kind == "paper" else (args.cheap_trials, None)
        flags += ["--faithful", "--val-windows", "0" if kind == "paper" else "8", "--n-trials", str(trials)]
        flags += ["--timeout", str(timeout)] if timeout else []
        return best, ["python", "-m", "pho.hillclimb", *flags]
    flags += ["--n-trials", str(args.pho_trials), "--sampler", args.sampler, "--proxy", args.proxy, "--pruner",
              args.pruner, "--e2e-windows", str(args.pho_windows), "--x-tokens", "0"]
    flags += ["--warm-start", args.warm_start] if kind == "mf-warm" else []
    return best, ["python", "-m", "pho.search", *flags]


def trials_of(best: Path) -> list[dict]:
    return read_json(best.with_name(best.stem + "_trials.json"))["trials"]


def search(kind: str, target: str, args: argparse.Namespace) -> dict:
    """Run one search once; its cost record (with provenance), cached next to its outputs."""
    best, cmd = search_command(kind, target, args)
    record = best.with_suffix(".cost.json")
    if record.exists():
        return read_json(record)
    if kind == "mf-warm" and not args.warm_start:
        raise SystemExit(f"{kind} at {target} has not run yet and needs --warm-start")
    prov = provenance(cmd, resolve(cmd))  # the commit and config at launch
    launched, cpu0 = time.time(), child_cpu()
    wall = run([sys.executable, *cmd[1:]], best.with_suffix(".log"))
    cpu = child_cpu() - cpu0
    trials, chosen = trials_of(best), read_json(best)
    done = next(t for t in trials if t["number"] == chosen["trial"])
    finished = dt.datetime.fromisoformat(done["start"]).timestamp() + (done["seconds"] or 0.0)
    states = {s: sum(t["state"] == s for t in trials) for s in {t["state"] for t in trials}}
    out = {"kind": kind, "target": target, "config": str(best), "best_trial": chosen["trial"],
           "best_label": done["user_attrs"].get("label", "searched"), "best_value": chosen["value"],
           "crepe": chosen["crepe"], "to_best_seconds": finished - launched, "total_seconds": wall,
           "to_best_cpu_seconds": done["user_attrs"].get("process_cpu_seconds"), "total_cpu_seconds": cpu,
           "trials": len(trials), "states": states, "provenance": prov}
    write_json_atomic(record, out)
    return out


def rung_values(best: Path) -> dict[str, dict[str, float]]:
    """Trial number -> {windows: value} of every trial of a PHO study (read from its SQLite storage)."""
    import optuna

    study = optuna.load_study(study_name=best.stem, storage=f"sqlite:///{best.with_suffix('.db')}")
    return {str(t.number): {str(k): v for k, v in t.intermediate_values.items()} for t in study.get_trials()}


def rank_agreement(rungs: dict[str, dict[str, float]]) -> tuple[float | None, int]:
    """Spearman rho between the first rung's value (1 window) and the full budget's over the trials that
    completed, and their count: how well the cheap fidelity ranks what the full one decides."""
    from scipy.stats import spearmanr

    full = str(max((int(k) for v in rungs.values() for k in v), default=1))
    pairs = [(v["1"], v[full]) for v in rungs.values() if full != "1" and "1" in v and full in v]
    if len(pairs) < 3:
        return None, len(pairs)
    return float(spearmanr(*zip(*pairs)).statistic), len(pairs)


def test_ppl(label: str, target: str, config: Path | str, args: argparse.Namespace) -> dict:
    """Faithful prune + TEST-split PPL of ``config`` through crepe.prune, cached in its report."""
    report, cmd = test_command(label, target, config, args, Path(args.work_dir))
    cmd += ["--update", args.update] if args.update else []
    if not report.exists():
        run([sys.executable, *cmd[1:]], report.with_suffix(".log"))
    rep = read_json(report)
    return {"test_ppl": rep["ppl_pruned"], "protocol": rep["eval_protocol"], "realised_sparsity": rep["realised_sparsity"]}


def evaluations(row: dict) -> tuple[int, float]:
    """(evaluations up to and including the best, mean CPU seconds per evaluation) of a search's trial log."""
    trials = trials_of(Path(row["config"]))
    cpu = [t["user_attrs"]["cpu_seconds"] for t in trials if "cpu_seconds" in t["user_attrs"]]
    return [t["number"] for t in trials].index(row["best_trial"]) + 1, sum(cpu) / max(len(cpu), 1)


def cell(num: float | None, den: float | None) -> str:
    return f"{num / den:.1f}x" if num and den else "-"


def markdown(summary: dict) -> str:
    lines = [markdown_stamp(summary["provenance"]), "", *[f"- {t}: {p}" for t, p in summary["protocol"].items()], "",
             "Measured, one run per target (time to best: the command's process CPU seconds when its best trial "
             "ended, and wall seconds from its launch; the climbs' bests are within their budgets):", "",
             "| target | search | best trial (of trials) | test PPL | / paper climb | to best: CPU s (wall s) "
             "| total: CPU s (wall s) | paper climb / this, to best: CPU (wall) | 8-window climb / this, to best: CPU (wall) |",
             "|---|---|---|---|---|---|---|---|---|"]
    extrapolated = []
    for target, rows in summary["results"].items():
        paper, cheap = rows.get("paper"), rows.get("cheap")
        for kind, row in rows.items():
            best = (f"evaluation {row['best_trial'] + 1} ({row['trials']})" if kind in CLIMBS
                    else f"{row['best_trial']} {row['best_label']} ({row['trials']})")
            cells = [target, CLIMBS.get(kind, kind), best,
                     f"{row['test_ppl']:.2f}" if row.get("test_ppl") else "-",
                     f"{row['test_ppl'] / paper['test_ppl']:.3f}" if row.get("test_ppl") and (paper or {}).get("test_ppl")
                     else "-",
                     f"{row['to_best_cpu_seconds']:.0f} ({row['to_best_seconds']:.0f})",
                     f"{row['total_cpu_seconds']:.0f} ({row['total_seconds']:.0f})"]
            for climb in (paper, cheap):
                cells.append("-" if kind in CLIMBS or not climb else
                             f"{cell(climb['to_best_cpu_seconds'], row['to_best_cpu_seconds'])} "
                             f"({cell(climb['to_best_seconds'], row['to_best_seconds'])})")
            lines.append("| " + " | ".join(cells) + " |")
        shipped = summary.get("reference", {}).get(target)
        if shipped:
            ratio = f"{shipped['test_ppl'] / paper['test_ppl']:.3f}" if (paper or {}).get("test_ppl") else "-"
            lines.append(f"| {target} | no search: crepe's shipped config | - | {shipped['test_ppl']:.2f} | {ratio} | "
                         "- | - | - | - |")
        earlier = summary.get("earlier_cheap", {}).get(target)
        path = cheap or earlier
        if paper and path and evaluations(path)[0] > paper["trials"]:  # the paper climb stopped too early to tell
            steps, _ = evaluations(path)
            paper_steps, per_step = evaluations(paper)
            source = "this run" if cheap else f"earlier run, {path['config']}"
            for kind, row in rows.items():
                if kind not in CLIMBS:
                    extrapolated.append(f"| {target} | {kind} | {paper_steps} of {paper['trials']} | {per_step:.0f} | "
                                        f"{steps} ({source}) | {steps * per_step:.0f} | "
                                        f"{cell(steps * per_step, row['to_best_cpu_seconds'])} |")
    agreement = [(target, kind, *rank_agreement(row["rungs"])) for target, rows in summary["results"].items()
                 for kind, row in rows.items() if row.get("rungs")]
    if agreement:
        lines += ["", "How the first rung ranks the trials the full budget decides (complete trials, Spearman rho of "
                  "the value on 1 window against the value on all windows):", "", "| target | search | rho | trials |",
                  "|---|---|---|---|"]
        lines += [f"| {t} | {k} | {rho:+.2f} | {n} |" if rho is not None else f"| {t} | {k} | - | {n} |"
                  for t, k, rho, n in agreement]
    if extrapolated:
        lines += ["", "EXTRAPOLATED, not measured: the paper climb's CPU time to best if it needed as many evaluations "
                  "as the 8-window climb did (measured: the paper climb's CPU seconds per evaluation in this run, and "
                  "the 8-window climb's evaluations to its best, in this run or, where named, an earlier identical one):", "",
                  "| target | search | paper climb: evaluation of its best (of evaluations run) | paper climb CPU s "
                  "per evaluation (measured) | 8-window climb evaluations to best (measured) | paper climb CPU s to "
                  "best, extrapolated | extrapolated paper climb / this, CPU |", "|---|---|---|---|---|---|---|",
                  *extrapolated]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dataset", default="wikivital")
    ap.add_argument("--targets", default="0.5,2:4")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"subset of {','.join(STEPS)} to run now")
    ap.add_argument("--nsamples", type=int, default=8)
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--update", default=None, help="weight update of every prune (default: crepe's own)")
    ap.add_argument("--pho-variants", default="mf,mf-warm")
    ap.add_argument("--pho-trials", type=int, default=60, help="finished trials (complete + pruned) per PHO search")
    ap.add_argument("--pho-windows", type=int, default=8, help="full budget: calibration windows of the e2e proxy")
    ap.add_argument("--pruner", default="sha")
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--proxy", default="auto")
    ap.add_argument("--warm-start", default="", help="config JSON(s) mf-warm enqueues (pho.search --warm-start)")
    ap.add_argument("--paper-trials", type=int, default=8)
    ap.add_argument("--paper-timeout", type=float, default=None,
                    help="the paper climb starts no evaluation after SEC wall seconds (its time budget)")
    ap.add_argument("--cheap-trials", type=int, default=30)
    ap.add_argument("--earlier-cheap", default="", help="TARGET=BEST.json,...: an earlier run of the same 8-window "
                    "climb (pho.hillclimb --best-config output) whose evaluations to best the extrapolation uses where "
                    "this run has no 8-window climb")
    ap.add_argument("--test-windows", type=int, default=24)
    ap.add_argument("--work-dir", default="results/pho/speed")
    ap.add_argument("--cache-root", default="runs/pho-speed", help="statistics caches (fresh per search)")
    ap.add_argument("--out", default="results/pho/speed.json")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    steps = set(args.steps.split(","))
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    protocol = (f"model={args.model} calibration={args.dataset} {args.nsamples}x{args.seqlen}; PHO: {args.sampler}, "
                f"proxy {args.proxy}, pruner {args.pruner}, budget 1..{args.pho_windows} calibration windows; climbs: "
                "faithful prune + validation PPL (paper protocol: the whole split; cheap: 8 windows); quality: faithful "
                f"prune, test split, {args.test_windows} windows; update {args.update or get_method('crepe').default_update + ' (crepe default)'}; each row's "
                "budget (trials, timeout) is its record's command")
    out = Path(args.out)
    summary = read_json(out) if out.exists() else {"results": {}}
    summary.update(versions=versions())
    for item in (i for i in args.earlier_cheap.split(",") if i):
        target, path = item.split("=", 1)
        summary.setdefault("earlier_cheap", {})[target] = {"config": path, "best_trial": read_json(path)["trial"]}
    if not isinstance(summary.get("protocol"), dict):
        summary["protocol"] = {}
    for target in args.targets.split(","):
        rows = summary["results"].setdefault(target, {})
        summary["protocol"][target] = protocol
        for kind in [*variants(args), *CLIMBS]:
            best, _ = search_command(kind, target, args)
            if (kind if kind in CLIMBS else "pho") in steps or best.with_suffix(".cost.json").exists():
                rows[kind] = {**rows.get(kind, {}), **search(kind, target, args)}
                if kind not in CLIMBS and "rungs" not in rows[kind] and best.with_suffix(".db").exists():
                    rows[kind]["rungs"] = rung_values(best)
            if kind in rows and "test" in steps:
                rows[kind].update(test_ppl(kind, target, best, args))
            summary["provenance"] = provenance(current_command(), vars(args))
            write_json_atomic(out, summary)
        if "test" in steps:  # what a user gets without any search, under the same protocol and update
            summary.setdefault("reference", {})[target] = test_ppl("default", target, DEFAULT, args)
            write_json_atomic(out, summary)
    out.with_suffix(".md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
