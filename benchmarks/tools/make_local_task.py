"""Build the shipped local zero-shot task ``wikivital_describe`` from offline text.

    python -m benchmarks.tools.make_local_task            # writes crepe/evaluation/tasks/wikivital_describe/wikivital_describe.jsonl

Each item is one article of the wikivital **test** split (``sha256(title) % 100 < 10``, the split
that calibration never sees): its title and four short descriptions (Wikipedia's own
``description`` field), the article's and three drawn from other test articles of the same topic
(any topic when too few). The model picks the description that fits the title, which takes world
knowledge rather than copying (given the article's lead sentence too, dense SmolLM2-135M scored
87% on 60 items: too close to the ceiling to tell models apart). Chance level is 25%.
Items and distractors are drawn with a seeded generator, so the file is the same on every run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from crepe.data.corpora import wikivital_path, wikivital_split_of

TASK_DIR = Path(__file__).resolve().parents[2] / "crepe" / "evaluation" / "tasks" / "wikivital_describe"
CHOICES = 4


def test_articles() -> list[dict]:
    """Test-split articles with a non-empty, unique description, sorted by title."""
    raw = json.loads(wikivital_path().read_text(encoding="utf-8"))
    rows = [{"title": e.get("title", k), "description": e.get("description", "").strip(), "topic": e.get("topic", "")}
            for k, e in raw.items()]
    rows = [r for r in rows if wikivital_split_of(r["title"]) == "test" and r["description"]]
    counts = defaultdict(int)
    for r in rows:
        counts[r["description"].lower()] += 1
    return sorted((r for r in rows if counts[r["description"].lower()] == 1), key=lambda r: r["title"])


def build_items(articles: list[dict], n_items: int, seed: int) -> list[dict]:
    """``n_items`` multiple-choice items: the true description at a random position among CHOICES."""
    rng = random.Random(seed)
    by_topic = defaultdict(list)
    for a in articles:
        by_topic[a["topic"]].append(a["description"])
    chosen = rng.sample(articles, min(n_items, len(articles)))
    items = []
    for a in sorted(chosen, key=lambda r: r["title"]):
        pool = [d for d in by_topic[a["topic"]] if d != a["description"]]
        if len(pool) < CHOICES - 1:
            pool = [b["description"] for b in articles if b["description"] != a["description"]]
        choices = rng.sample(pool, CHOICES - 1)
        label = rng.randrange(CHOICES)
        choices.insert(label, a["description"])
        items.append({"title": a["title"], "topic": a["topic"], "choices": choices, "label": label})
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(TASK_DIR / "wikivital_describe.jsonl"))
    args = ap.parse_args()
    items = build_items(test_articles(), args.items, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {len(items)} items ({CHOICES} choices, chance {1 / CHOICES:.0%}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
