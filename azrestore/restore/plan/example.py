"""The commented example plan that ``azrestore plan example`` prints (``example.yaml``,
shipped inside the package)."""

from __future__ import annotations

from importlib.resources import files


def example_plan() -> str:
    """A commented example plan (it loads as is)."""
    return files("azrestore.restore.plan").joinpath("example.yaml").read_text(encoding="utf-8")
