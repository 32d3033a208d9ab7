"""The demo's output on this terminal: its steps, what it says, and the commands it runs."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(highlight=False)


def step(text: str) -> None:
    console.print(f"\n[bold cyan]==>[/] [bold]{text}[/]")


def say(text: str) -> None:
    console.print(Text(text), soft_wrap=True)


def show_command(text: str) -> None:
    console.print(Text(f"$ {text}", style="dim"), soft_wrap=True)
