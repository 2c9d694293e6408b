"""The champion/challenger decision: a pure function of two sets of metrics, no store involved.

``tracking.register_and_promote`` gathers the inputs (the new run's metrics, the champion's metrics on the
same test set) and applies the result to the registry; the rule itself lives here so it is tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """Whether the challenger becomes champion, why, and the scores compared."""

    promote: bool
    reason: str
    score: float
    champion_score: float | None = None


def registry_score(metrics: Mapping[str, float], keys: Sequence[str]) -> float | None:
    """The sum of the promotion metrics, or None when one is missing."""
    if any(k not in metrics for k in keys):
        return None
    return float(sum(metrics[k] for k in keys))


def challenger_score(metrics: Mapping[str, float], keys: Sequence[str]) -> float:
    """The challenger's score; ValueError when one of the promotion metrics was not logged."""
    score = registry_score(metrics, keys)
    if score is None:
        raise ValueError(f"promotion metrics {list(keys)} not all logged; have {sorted(metrics)[:8]}...")
    return score


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    keys: Sequence[str],
    champion_name: str = "champion",
    basis: str = "",
) -> Decision:
    """Promote the challenger when there is no champion (``champion`` None), when the champion has no
    comparable score, or when the challenger's summed ``keys`` are strictly higher; a tie keeps the champion.

    ``champion_name`` (e.g. ``champion v3``) and ``basis`` (where the champion's metrics come from) only
    word the reason.
    """
    score = challenger_score(challenger, keys)
    if champion is None:
        return Decision(True, "no champion yet", score)
    old = registry_score(champion, keys)
    if old is None:
        return Decision(True, f"{champion_name} has no comparable {'+'.join(keys)}", score)
    where = f" ({basis})" if basis else ""
    if score > old:
        return Decision(True, f"{score:.4f} beats {champion_name} {old:.4f}{where}", score, old)
    return Decision(False, f"{score:.4f} does not beat {champion_name} {old:.4f}{where}", score, old)
