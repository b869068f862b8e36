"""Model card (README.md) of a saved pruned folder, from its run report.

YAML front matter in the Hugging Face hub's format (``huggingface_hub.ModelCardData``): ``base_model``
with ``base_model_relation: pruned``, the base model's ``license`` where its own card or GGUF header
names one (omitted otherwise), ``datasets`` (the calibration corpus, only when it is a hub dataset),
``pipeline_tag: text-generation``, ``library_name: transformers`` (the folder is a plain transformers
checkpoint), ``tags`` (pruned, the sparsity, the pattern, the method) and ``model-index`` with the
pruned model's measured perplexity and, when run, zero-shot accuracy. Below it: a dense-against-pruned
table, the calibration data and the command that made the model. Every figure comes from the report;
nothing is filled in by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crepe.io.files import write_atomic
from crepe.models.offline import OFFLINE_MODELS

CARD_NAME = "README.md"
# each offline alias is the GGUF export of a hub model (4-bit, dequantised by transformers)
ALIAS_BASE_MODELS = {alias: m.base_model for alias, m in OFFLINE_MODELS.items()}
# the hub datasets behind the corpus names of crepe.data.corpora (the others are local: never a hub id)
HUB_DATASETS = {"c4": ("allenai/c4", None), "wikitext2": ("Salesforce/wikitext", "wikitext-2-raw-v1")}
LICENSE_KEYS = ("license", "license_name", "license_link")


def base_model_id(spec: str) -> str | None:
    """Hub id the pruned model derives from: the alias's, the hub id itself, or the ``base_model``
    of a local folder's own card (a model pruned again); None when unknown (a bare local file)."""
    from crepe.models.loading import HUB_ALIASES, resolve

    if spec in ALIAS_BASE_MODELS:
        return ALIAS_BASE_MODELS[spec]
    try:
        source = resolve(spec)
    except ValueError:
        return None
    if source.kind == "hub":
        return HUB_ALIASES.get(spec, source.location)
    if source.kind == "folder":
        return read_front_matter(Path(source.location) / CARD_NAME).get("base_model")
    return None


def base_license(spec: str) -> dict[str, str]:
    """The base model's ``license`` (and ``license_name``/``license_link``) as its own card says, read
    offline: a folder's README.md, a hub model's README.md in the local hub cache, a GGUF header's
    ``general.license``; {} when none is found."""
    from crepe.models.loading import resolve

    try:
        source = resolve(spec)
    except ValueError:
        return {}
    if source.kind == "gguf":
        return _gguf_license(source.location)
    if source.kind == "folder":
        meta = read_front_matter(Path(source.location) / CARD_NAME)
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source.location, CARD_NAME)
        meta = read_front_matter(Path(cached)) if isinstance(cached, str) else {}
    return {k: str(meta[k]) for k in LICENSE_KEYS if meta.get(k)} if meta.get("license") else {}


def _gguf_license(path: str) -> dict[str, str]:
    try:
        from gguf import GGUFReader

        field = GGUFReader(path).fields.get("general.license")
        value = field.contents() if field is not None else None
    except Exception:  # an unreadable header or no gguf package: the license stays unknown
        return {}
    return {"license": str(value)} if value else {}


def read_front_matter(path: Path) -> dict[str, Any]:
    """The YAML between the leading ``---`` lines of a card ({} if none or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    block = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def describe_target(config: dict[str, Any]) -> tuple[str, list[str]]:
    """("50% unstructured" | "2:4 semi-structured", tags) for a PruneConfig dict."""
    pattern = str(config.get("pattern", "unstructured"))
    percent = round(100 * float(config.get("sparsity", 0)))
    method = str(config.get("method", "unknown"))
    if pattern == "unstructured":
        return f"{percent}% unstructured", ["pruned", "sparse", f"sparsity-{percent}", "unstructured", method, "crepe"]
    n, m = pattern.split(":")
    return f"{pattern} semi-structured", ["pruned", "sparse", f"sparsity-{percent}", f"{n}-of-{m}", "semi-structured",
                                         method, "crepe"]


def zeroshot_pairs(zeroshot: dict[str, Any] | None) -> list[tuple[dict | None, dict]]:
    """(dense row or None, pruned row) per task and metric of a report's ``zeroshot`` entry."""
    if not zeroshot or not zeroshot.get("pruned"):
        return []
    dense = {(r["task"], r["metric"]): r for r in (zeroshot.get("dense") or {}).get("rows", [])}
    return [(dense.get((r["task"], r["metric"])), r) for r in zeroshot["pruned"]["rows"]]


def dataset_entry(spec: str) -> tuple[str, str, str | None]:
    """(type, name, config) of a corpus spec in model-index: a hub id for hub corpora, ``wikivital``,
    or ``local`` with the file's name (never its path)."""
    if spec in HUB_DATASETS:
        hub_id, config = HUB_DATASETS[spec]
        return hub_id, spec, config
    if spec.startswith(("text:", "jsonl:")):
        return "local", Path(spec.split(":", 1)[1]).name, None
    return spec, spec, None


def card_data(report: dict[str, Any], name: str):
    """ModelCardData with the base model, its license, tags and the pruned model's measured results."""
    from huggingface_hub import EvalResult, ModelCardData

    target, tags = describe_target(report.get("config", {}))
    options = report.get("options") or {}
    results = []
    if report.get("ppl_pruned") is not None:
        kind, dataset, config = dataset_entry(str(options.get("eval_dataset", "local")))
        results.append(EvalResult(task_type="text-generation", task_name="perplexity", dataset_type=kind,
                                  dataset_name=dataset, dataset_config=config, dataset_split=options.get("eval_split"),
                                  metric_type="perplexity", metric_name="perplexity",
                                  metric_value=round(float(report["ppl_pruned"]), 4)))
    for _, row in zeroshot_pairs(report.get("zeroshot")):
        results.append(EvalResult(task_type="multiple-choice", dataset_type=row["task"], dataset_name=row["task"],
                                  metric_type=row["metric"], metric_name=row["metric"],
                                  metric_value=round(row["value"], 4)))
    spec = str(report.get("model", ""))
    base = base_model_id(spec)
    calibration = HUB_DATASETS.get(str(options.get("calib_dataset")))
    return ModelCardData(base_model=base, base_model_relation="pruned" if base else None, **base_license(spec),
                         datasets=[calibration[0]] if calibration else None, pipeline_tag="text-generation",
                         library_name="transformers", tags=tags, model_name=name, eval_results=results or None), target


def _fmt(value: float | None, stderr: float | None = None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" + (f" ± {stderr:.{digits}f}" if stderr is not None else "")


def card_text(report: dict[str, Any], name: str) -> str:
    """The whole README.md: front matter + dense-vs-pruned table + command."""
    data, target = card_data(report, name)
    cfg = report.get("config", {})
    base = data.base_model or report.get("model", "a local model")
    rows = []
    if report.get("ppl_dense") is not None or report.get("ppl_pruned") is not None:
        rows.append(f"| perplexity ({report.get('eval_protocol')}) | {_fmt(report.get('ppl_dense'))} | "
                    f"{_fmt(report.get('ppl_pruned'))} |")
    for dense, row in zeroshot_pairs(report.get("zeroshot")):
        chance = f", chance {row['chance']:.2f}" if row.get("chance") is not None else ""
        rows.append(f"| {row['task']} {row['metric']} (n={row['n']}{chance}) | "
                    f"{_fmt(dense and dense['value'], dense and dense['stderr'])} | {_fmt(row['value'], row['stderr'])} |")
    command = (report.get("provenance") or {}).get("command") or "(not recorded)"
    update = cfg.get("resolved_update", "none")
    update = "" if update == "none" else f" and its **{update}** weight update"
    return "\n".join([
        "---", data.to_yaml(), "---", "",
        f"# {name}", "",
        f"`{base}` pruned to {target} with the **{cfg.get('method')}** method of the crepe toolkit{update} "
        f"(realised sparsity {report.get('realised_sparsity', float('nan')):.4f} over the decoder linears; "
        "embeddings and lm_head are kept dense).", *_skipped(report),
        "The weights are stored dense with the pruned entries set to zero, so the folder loads with "
        "`AutoModelForCausalLM.from_pretrained`; `pruning_config` in config.json records how it was pruned "
        "and `pruning_report.json` holds the full run report.", "",
        f"Calibration data: `{report.get('calibration', '(not recorded)')}`", "",
        "| metric | dense | pruned |", "|---|---|---|", *rows, "",
        "Made by:", "", "```bash", command, "```", "",
    ])


def _skipped(report: dict[str, Any]) -> list[str]:
    """A sentence naming the decoder weights that exist but were never pruned (routers, gates)."""
    skipped = sorted((report.get("decoder_weights") or {}).get("skipped") or {})
    return [f"Never pruned (routers and gates, {len(skipped)} tensors): {', '.join(skipped)}."] if skipped else []


def write_model_card(folder: str | Path, report: dict[str, Any], name: str | None = None) -> Path:
    """Write ``folder/README.md`` atomically from ``report``; ``name``: the model's name (default:
    the folder's). Returns the card's path."""
    path = Path(folder) / CARD_NAME
    text = card_text(report, name or Path(folder).name)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def write_card_and_recipe(folder: str | Path, report: dict[str, Any], name: str | None = None) -> None:
    """The files of a saved folder made from its report: README.md and, when the report holds one,
    the run's ``recipe.yaml`` (``crepe.prune --recipe FOLDER`` repeats the run)."""
    from crepe.output.recipe import RECIPE_NAME, write_recipe

    write_model_card(folder, report, name)
    if report.get("recipe"):
        write_recipe(Path(folder) / RECIPE_NAME, report["recipe"])
