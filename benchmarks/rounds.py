"""The order of the runs: every tool on every image, taking turns, each run's summary
updated as it comes in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .children import note
from .images import ImageSpec, MiB
from .measure import Context, measure_convert, upload_on_fresh_azurite
from .summary import summarize


def _skipped(reason: str) -> dict[str, Any]:
    return {"skipped": True, "reason": reason}


def run_uploads(
    ctx: Context, specs: list[ImageSpec], paths: dict[str, Path], results: dict[str, Any]
) -> None:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for spec in specs:
        results[spec.name] = {}
        tools = []
        for tool in ctx.args.tool_list:
            reason = _upload_skip_reason(ctx, tool, spec)
            if reason:
                results[spec.name][tool] = _skipped(reason)
                note(f"upload {spec.name} {tool}: skipped ({reason})")
            else:
                tools.append(tool)
        for rep in range(ctx.args.repeat):
            for tool in in_turn(tools, rep):
                note(f"upload {spec.name} {tool} #{rep + 1} ...")
                result = upload_on_fresh_azurite(ctx, tool, spec, paths[spec.name], rep)
                tool_runs = runs.setdefault((spec.name, tool), [])
                tool_runs.append(result)
                results[spec.name][tool] = summarize(tool_runs, spec)
                note(f"upload {spec.name} {tool} #{rep + 1}: {_brief(result)}")


def in_turn(tools: list[str], rep: int) -> list[str]:
    """The order of the tools in repetition ``rep``. They take turns within a repetition, so
    drift in the machine's load hits every tool alike, and every other repetition reverses
    the order, so that no tool always follows another's clean-up, or always pays what
    the first run of a set pays. That was up to 4x for a dense convert (6.5 s against
    1.6-3.1 s): the host takes back memory the guest has left free for a while (the
    balloon's free page reporting), and touching 4 GiB of it again took 8.8 s against
    0.5 s at once after."""
    return tools if rep % 2 == 0 else tools[::-1]


def _upload_skip_reason(ctx: Context, tool: str, spec: ImageSpec) -> str | None:
    if (tool, spec.name) in ctx.skip:
        return f"--skip {tool}:{spec.name}"
    if tool == "azrestore" and ctx.azrestore is None:
        return "azrestore not installed"
    if tool == "azcopy" and ctx.azcopy is None:
        return ctx.azcopy_why_not
    if tool == "azcopy" and ctx.qemu_img is None:
        return "qemu-img not found (needed to make AzCopy's fixed VHD input)"
    return None


def run_converts(
    ctx: Context, specs: list[ImageSpec], paths: dict[str, Path], results: dict[str, Any]
) -> None:
    for spec in specs:
        results[spec.name] = {}
        runs: dict[str, list[dict[str, Any]]] = {}
        if ctx.qemu_img is None and "qemu-img" in ctx.args.convert_tools:
            results[spec.name]["qemu-img"] = _skipped("qemu-img not found")
        if ctx.azrestore is None and "azrestore" in ctx.args.convert_tools:
            results[spec.name]["azrestore"] = _skipped("azrestore not installed")
        tools = [t for t in ctx.args.convert_tools if t not in results[spec.name]]
        for rep in range(ctx.args.repeat):
            for tool in in_turn(tools, rep):
                note(f"convert {spec.name} {tool} #{rep + 1} ...")
                result = measure_convert(ctx, tool, spec, paths[spec.name], rep)
                tool_runs = runs.setdefault(tool, [])
                tool_runs.append(result)
                results[spec.name][tool] = summarize(tool_runs, spec)
                note(f"convert {spec.name} {tool} #{rep + 1}: {_brief(result)}")


def _brief(result: dict[str, Any]) -> str:
    parts = [
        f"{result.get('wall_s', '?')} s wall",
        f"{result.get('cpu_s', '?')} s CPU",
        f"{result.get('peak_rss_mib', '?')} MiB RSS",
    ]
    if "bytes_sent" in result:
        parts.append(f"{result['bytes_sent'] / MiB:.1f} MiB sent")
    parts.append("ok" if result.get("ok") else f"FAILED: {result.get('problems') or result}")
    return ", ".join(parts)
