"""Progress for people: a Rich bar over the files being loaded, a spinner per stage, a timing line each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from retailflow.ingest import IngestResult
from retailflow.running import StageListener


class RichStageListener(StageListener):
    """Shows a live progress display while the run lasts; use it as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<12}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rows]:>12,} rows"),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task: TaskID | None = None

    def __enter__(self) -> "RichStageListener":
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def stage_started(self, name: str, files: Sequence[Path] = ()) -> None:
        # A stage without files has no known size: the bar pulses until it ends.
        self.task = self.progress.add_task(name, total=len(files) or None, rows=0)

    def file_loaded(self, result: IngestResult) -> None:
        if self.task is not None:
            self.progress.advance(self.task)
            rows = self.progress.tasks[self.task].fields["rows"] + result.rows
            self.progress.update(self.task, rows=rows)

    def stage_finished(self, name: str, seconds: float) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.console.print(f"[green]✓[/green] {name:<12} {seconds:8.2f} s", highlight=False)
