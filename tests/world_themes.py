"""The eleven world themes of configs/taxonomy/world-themes.yaml, in the file's order (the tests' spec)."""

THEMES = (
    "conflict-and-security",
    "diplomacy",
    "politics-and-elections",
    "law-and-crime",
    "economy-and-trade",
    "disasters",
    "health-and-environment",
    "science-and-technology",
    "culture",
    "sports",
    "migration",
)
