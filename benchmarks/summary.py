"""Medians over the repetitions, the ratios between the tools and the targets they are
held to (reported, never asserted)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from .images import GiB, ImageSpec, MiB
from .tools import CONVERT_TOOLS, UPLOAD_TOOLS

MEDIAN_KEYS = (
    "wall_s",
    "cpu_s",
    "user_s",
    "sys_s",
    "peak_rss_mib",
    "azurite_cpu_s",
    "bytes_sent",
    "page_ranges",
    "azrestore_bytes_uploaded",
    "output_allocated",
)


def summarize(runs: list[dict[str, Any]], spec: ImageSpec) -> dict[str, Any]:
    """Medians over the repetitions (of the successful ones, when any succeeded)."""
    good = [r for r in runs if r.get("ok")] or runs
    summary: dict[str, Any] = {"ok": all(r.get("ok") for r in runs), "repeats": len(runs)}
    for key in MEDIAN_KEYS:
        values = [r[key] for r in good if isinstance(r.get(key), int | float)]
        if values:
            median = statistics.median(values)
            summary[key] = round(median, 3) if isinstance(median, float) else median
    reported = [
        r["tool_report"]["seconds"]
        for r in good
        if isinstance(r.get("tool_report"), dict)
        and isinstance(r["tool_report"].get("seconds"), int | float)
    ]
    if reported:
        summary["tool_reported_s"] = round(statistics.median(reported), 3)
    if "wall_s" in summary and summary["wall_s"] > 0:
        summary["disk_mib_per_s"] = round(spec.size / MiB / summary["wall_s"], 1)
    if "cpu_s" in summary:
        summary["cpu_s_per_gib"] = round(summary["cpu_s"] / (spec.size / GiB), 4)
    if "bytes_sent" in summary:
        summary["bytes_sent_over_nonzero"] = round(summary["bytes_sent"] / spec.data_bytes, 4)
    summary["runs"] = runs
    return summary


def _get(results: dict[str, Any], image: str, tool: str, key: str) -> float | None:
    entry = results.get(image, {}).get(tool, {})
    if entry.get("skipped") or not entry.get("ok"):
        return None
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def ratios(
    specs: list[ImageSpec], upload: dict[str, Any], convert: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"upload": {}, "convert": {}}
    for spec in specs:
        n = spec.name
        if n in upload:
            a_wall = _get(upload, n, "azrestore", "wall_s")
            out["upload"][n] = {
                "speedup_vs_sdk": _ratio(_get(upload, n, "sdk", "wall_s"), a_wall),
                "speedup_vs_azcopy": _ratio(_get(upload, n, "azcopy", "wall_s"), a_wall),
                "cpu_s_per_gib": {t: _get(upload, n, t, "cpu_s_per_gib") for t in UPLOAD_TOOLS},
                "bytes_sent_over_nonzero": {
                    t: _get(upload, n, t, "bytes_sent_over_nonzero") for t in UPLOAD_TOOLS
                },
                "peak_rss_mib": {t: _get(upload, n, t, "peak_rss_mib") for t in UPLOAD_TOOLS},
            }
        if n in convert:
            out["convert"][n] = {
                "speedup_vs_qemu_img": _ratio(
                    _get(convert, n, "qemu-img", "wall_s"), _get(convert, n, "azrestore", "wall_s")
                ),
                "cpu_s": {t: _get(convert, n, t, "cpu_s") for t in CONVERT_TOOLS},
            }
    return out


def _target(
    name: str, image: str | None, value: float | None, op: str, threshold: float
) -> dict[str, Any]:
    checks: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda v, t: v >= t,
        "<=": lambda v, t: v <= t,
        "<": lambda v, t: v < t,
    }
    return {
        "target": name,
        "image": image,
        "value": value,
        "want": f"{op} {threshold:g}",
        "pass": None if value is None else checks[op](value, threshold),
    }


def targets(
    specs: list[ImageSpec], upload: dict[str, Any], convert: dict[str, Any], sizes: str
) -> list[dict[str, Any]]:
    """The lead's targets, each with its value and pass/fail (None: not measured)."""
    by_role = {s.role: s.name for s in specs}
    result = []
    huge = by_role.get("huge")
    if huge and huge in upload:
        result.append(
            _target(
                "huge sparse upload: AzCopy wall / azrestore wall",
                huge,
                _ratio(
                    _get(upload, huge, "azcopy", "wall_s"),
                    _get(upload, huge, "azrestore", "wall_s"),
                ),
                ">=",
                15,
            )
        )
        result.append(
            _target(
                "huge sparse upload: azrestore bytes sent / non-zero data",
                huge,
                _get(upload, huge, "azrestore", "bytes_sent_over_nonzero"),
                "<=",
                1.2,
            )
        )
    dense = by_role.get("dense")
    if dense and dense in upload:
        result.append(
            _target(
                "dense upload: SDK wall / azrestore wall",
                dense,
                _ratio(
                    _get(upload, dense, "sdk", "wall_s"), _get(upload, dense, "azrestore", "wall_s")
                ),
                ">=",
                1.0,
            )
        )
        result.append(
            _target(
                "dense upload: azrestore CPU s/GiB / AzCopy CPU s/GiB",
                dense,
                _ratio(
                    _get(upload, dense, "azrestore", "cpu_s_per_gib"),
                    _get(upload, dense, "azcopy", "cpu_s_per_gib"),
                ),
                "<",
                1.0,
            )
        )
    rss = [
        v
        for table in (upload, convert)
        for image in table.values()
        if (v := (image.get("azrestore") or {}).get("peak_rss_mib")) is not None
    ]
    if rss:
        result.append(_target("azrestore peak RSS MiB (max over runs)", None, max(rss), "<", 200))
    for role in ("sparse", "huge"):
        name = by_role.get(role)
        if name and name in convert:
            result.append(
                _target(
                    "sparse convert: qemu-img wall / azrestore wall",
                    name,
                    _ratio(
                        _get(convert, name, "qemu-img", "wall_s"),
                        _get(convert, name, "azrestore", "wall_s"),
                    ),
                    ">=",
                    1.0,
                )
            )
    if sizes != "full":
        for t in result:
            t["note"] = "small sizes: indicative only, the targets are for the full set"
    return result
