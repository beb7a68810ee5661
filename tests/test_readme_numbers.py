"""The README's reference numbers are what a clean clone measures: the cheap rows (the canonical
networks' accuracies and the real-vs-real floors) are recomputed here to their printed precision;
`python bench/readme_numbers.py --check README.md` recomputes every row (it trains the runs)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("readme_numbers", ROOT / "bench" / "readme_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cheap_readme_numbers_are_reproduced():
    bench = _bench()
    quoted = bench.readme_table(ROOT / "README.md")
    rows = bench.table(cheap_only=True)
    assert rows[:2] == quoted[:2]  # the header
    for row in rows[2:]:
        assert row in quoted, f"README quotes another value than measured now:\n{row}"
    assert len(quoted) == len(rows) + 3  # and the three trained rows follow


def test_readme_lists_every_preset_as_ganforge_presets_prints_it():
    from ganforge.config import list_presets

    text = (ROOT / "README.md").read_text()
    block = text[text.index("$ ganforge presets\n"):].split("```")[0]
    width = max(map(len, list_presets()))
    for name, description in list_presets().items():
        assert f"{name:<{width}}  {description}" in block, name
