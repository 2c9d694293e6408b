"""The registry as people read and steer it: ``newstag models`` lists the versions of a registered model,
their aliases and why each got them; ``newstag promote`` makes a version champion by hand, recorded as an
override. The store is read and written through ``tracking``; this module picks the model and words the
result.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from pipeline import tracking
from pipeline.config import load_config


def models_command(
    name: str | None,
    config_path: str | None = None,
    overrides: list[str] | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """The versions of registered model ``name`` (default: the config's ``tracking.registered_model``)."""
    if name is None:
        name = load_config(config_path, overrides).tracking.registered_model
    return tracking.registry_versions(name, tracking_uri)


def models_lines(result: Mapping[str, Any]) -> list[str]:
    """A table of the versions, newest first, each followed by the sentence of its decision."""
    versions = result["versions"]
    lines = [f"{result['name']} in {result['tracking_uri']}: {len(versions)} version(s)"]
    header = ("version", "aliases", "created", "data", "decision")
    rows = [
        (
            f"v{v['version']}",
            ", ".join(v["aliases"]) or "-",
            v["created"] or "-",
            (v["data_fingerprint"] or "-")[:12],
            v["decision"] or "-",
        )
        for v in versions
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row, v in zip(rows, versions, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if v["reason"]:
            lines += textwrap.wrap(v["reason"], 110, initial_indent="    ", subsequent_indent="    ")
    return lines


def promote_command(
    name: str, version: str, reason: str, export_dir: str = "models", tracking_uri: str | None = None
) -> dict[str, Any]:
    """Make version ``version`` of ``name`` champion by hand (``tracking.promote_by_hand``)."""
    return tracking.promote_by_hand(name, version, reason, export_dir, tracking_uri)


def promote_lines(result: Mapping[str, Any]) -> list[str]:
    """What the override did."""
    if not result["changed"]:
        return [f"v{result['version']} already is the champion of {result['name']}; nothing changed"]
    before = f"v{result['champion_before']}" if result["champion_before"] else "none"
    return [
        f"{result['name']}: champion {before} -> v{result['version']} (by hand)",
        f"  {result['reason']}",
        f"  exported to {result['export_path']}",
    ]
