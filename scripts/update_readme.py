"""Copy the generated tables (results/*.md) into README.md between their markers.

    python scripts/update_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {"methods-table": ROOT / "results" / "methods.md", "cost-table": ROOT / "results" / "cost.md"}


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, source in SECTIONS.items():
        body = source.read_text().strip() if source.is_file() else "(not generated yet)"
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
