"""`retailflow watch`: load files as they land in a folder, one run per group of files that landed together.

A file is taken once it is complete: its size and modification time unchanged over two polls (a file
renamed into the folder, or one whose writer has stopped). Everything complete at a poll is one batch:
loaded and validated in one transaction (the single pass: a day's headers and line items are checked
together), then the analytics stages bring the days it touched up to date. A file that cannot be loaded
(bad header, bad encoding) goes to the failed folder beside a `.error.txt` with the one-line error; the
others of its batch go on. Files are recorded in audit by checksum as ever, so a restart never loads one
twice. SIGTERM or Ctrl-C lets the current batch finish, then the watcher exits 0; after a harder stop, the
next start first runs the analytics, which a batch killed after its commit may have left behind.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.ingest import ingest, is_input_file, is_input_name
from retailflow.quality.rules import Rule
from retailflow.running import StageListener, load_and_validate
from retailflow.sources.mapping import Source, SourceMap

#: Folders under the landing folder the watcher itself writes to by default (skipped when scanning).
FAILED_FOLDER = "_failed"


@dataclass
class BatchReport:
    """One batch: its files, what happened to them, and seconds per stage."""

    files: list[str]
    loaded: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    staged: int = 0
    quarantined: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class WatchStatus:
    """What the watcher has done so far, for its live display."""

    polls: int = 0
    seen: int = 0
    loaded: int = 0
    failed: int = 0
    batches: int = 0
    last: BatchReport | None = None


class _Rollback(Exception):
    """Ends a trial load: nothing of it is kept."""


class Watcher:
    """Polls a landing folder and runs each batch of complete files; `poll()` is one step, `run()` the loop."""

    def __init__(self, backend: Backend, folder: Path, rules: Sequence[Rule], *, processed: Path | None = None,
                 failed: Path | None = None, after_batch: Callable[[Backend], object] | None = None,
                 listener: StageListener = StageListener(), sources: SourceMap = SourceMap()) -> None:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder; give the landing folder files arrive in")
        self.backend, self.folder, self.rules = backend, folder, rules
        self.processed = processed
        self.failed = failed or folder / FAILED_FOLDER
        self.after_batch = after_batch
        self.listener = listener
        self.sources = sources
        self.status = WatchStatus()
        self.stop = threading.Event()
        self._previous: dict[Path, tuple[int, int]] = {}
        #: Files left in place after their batch, by the size and time they had then.
        self._done: dict[Path, tuple[int, int]] = {}

    def _candidates(self) -> dict[Path, tuple[int, int]]:
        found = {}
        for path in self.folder.iterdir():
            if not (is_input_file(path) or is_input_name(path.name) and self.sources.source_for(path)):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # renamed away between the listing and now
                continue
            if path.is_file():
                found[path] = (stat.st_size, stat.st_mtime_ns)
        return found

    def complete_files(self) -> list[Path]:
        """Files unchanged since the previous poll and not handled yet (each call is one poll)."""
        current = self._candidates()
        complete = sorted(path for path, signature in current.items()
                          if self._previous.get(path) == signature and self._done.get(path) != signature)
        self._previous = current
        self._done = {path: signature for path, signature in self._done.items() if current.get(path) == signature}
        self.status.polls += 1
        return complete

    def poll(self) -> BatchReport | None:
        """One poll: run the batch of files complete now, if any."""
        files = self.complete_files()
        if not files:
            return None
        self.status.seen += len(files)
        report = self.run_batch(files)
        self.status.batches += 1
        self.status.loaded += report.loaded
        self.status.failed += len(report.failed)
        self.status.last = report
        return report

    def run_batch(self, files: list[Path]) -> BatchReport:
        report = BatchReport([path.name for path in files])
        started = time.perf_counter()
        batch: list[tuple[Path, Source]] = []
        for path in files:
            source = self.sources.source_for(path)
            if source is None:
                self._fail(report, path, f"{path}: cannot tell which entity this file holds from its name; "
                                         "name it like store_sales_header_2024-12-13.csv or map it in a source mapping")
            else:
                batch.append((path, source))
        try:
            ingested, validated = self._single_pass(batch, report)
        except UserError as error:
            batch, (ingested, validated) = self._without_bad_files(batch, report, error)
        if validated is not None:
            report.staged, report.quarantined = validated.staged, validated.quarantined
        report.loaded = sum(result.status == "loaded" for result in ingested)
        report.skipped = sum(result.status == "skipped" for result in ingested)
        # Staged and committed: the files are done with, whatever the analytics below make of them.
        for path, _ in batch:
            self._handled(path)
        if report.loaded and self.after_batch:
            report.seconds.update(self.after_batch(self.backend) or {})
        report.seconds["batch"] = time.perf_counter() - started
        return report

    def _single_pass(self, batch: list[tuple[Path, Source]], report: BatchReport):
        if not batch:
            return [], None
        return load_and_validate(self.backend, batch, self.rules, listener=self.listener, seconds=report.seconds)

    def _without_bad_files(self, batch: list[tuple[Path, Source]], report: BatchReport, error: UserError):
        """After a batch failed: each file loaded alone (and rolled back) to find the bad ones, which are set
        aside; the rest run again together. Returns the files that ran and their outcome."""
        remaining = list(batch)
        if len(batch) > 1:
            for path, entity in batch:
                problem = self._load_error(path, entity)
                if problem:
                    self._fail(report, path, problem)
                    remaining.remove((path, entity))
            if remaining and len(remaining) < len(batch):
                try:
                    return remaining, self._single_pass(remaining, report)
                except UserError as again:
                    error = again
        for path, _ in remaining:
            self._fail(report, path, str(error))
        return [], ([], None)

    def _fail(self, report: BatchReport, path: Path, error: str) -> None:
        report.failed[path.name] = error
        self._set_aside(path, error)

    def _load_error(self, path: Path, source: Source) -> str | None:
        """The one-line error loading this file alone gives; None when it loads (nothing of the trial stays)."""
        try:
            with self.backend.transaction():
                ingest(self.backend, [(path, source)])
                raise _Rollback
        except _Rollback:
            return None
        except UserError as error:
            return str(error)

    def _handled(self, path: Path) -> None:
        if self.processed is None:
            stat = path.stat()
            self._done[path] = (stat.st_size, stat.st_mtime_ns)
        else:
            _move(path, self.processed)

    def _set_aside(self, path: Path, error: str) -> None:
        moved = _move(path, self.failed)
        moved.with_name(moved.name + ".error.txt").write_text(error.splitlines()[0] + "\n", encoding="utf-8")

    def run(self, interval: float, *, once: bool = False, on_poll: Callable[[WatchStatus], None] = lambda s: None) -> None:
        """Poll every `interval` seconds until stopped (SIGTERM, Ctrl-C, `stop`); with `once`, run the files
        complete after one interval and return (files still being written wait for the next run)."""
        previous = {sig: signal.signal(sig, lambda *_: self.stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            # A watcher killed between a batch's commit and the end of its analytics left them behind, and its
            # files count as done: the analytics run once at the start (with nothing new they change nothing).
            if self.after_batch:
                self.after_batch(self.backend)
            self.complete_files()
            on_poll(self.status)
            while not self.stop.wait(interval):
                self.poll()
                on_poll(self.status)
                if once:
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _move(path: Path, folder: Path) -> Path:
    """Move a file into folder, beside any of the same name (a numbered suffix then); returns where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    number = 1
    while target.exists():
        target = folder / f"{path.stem}.{number}{path.suffix}"
        number += 1
    shutil.move(str(path), target)
    return target
