"""A run's wall-clock limit and the reason it ends with when it runs out (the runner enforces it).

Every run has WAYFARER_RUN_DEADLINE_SECONDS; a workflow run may ask for less with Skyvern's
`max_elapsed_time_minutes`. The server's deadline stays the ceiling: the queue's visibility timeout
follows it, so no run may outlast it by more than its finally block's own short limit
(WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS, kept well inside the timeout's margin).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db.models import Run
from app.platform.settings import Settings
from workers.agent.contract import RunOutcome
from workers.run_store import DbRunStore
from workers.workflows.records import BlockRecorder


@dataclass(frozen=True)
class RunDeadline:
    seconds: int
    limit: str  # the limit, as the failure_reason names it

    def timed_out(self, store: DbRunStore, recorder: BlockRecorder | None) -> RunOutcome:
        """The outcome of a run stopped at this deadline: a workflow run says which block it was in."""
        if recorder is not None:
            where = f"during block {recorder.current}" if recorder.current else "between blocks"
            return RunOutcome("timed_out", failure_reason=(
                f"{self.limit} {where}; the blocks that finished keep their output."))
        return RunOutcome("timed_out", failure_reason=(
            f"{self.limit} after {store.steps_started} step(s)"
            + (f"; last action: {store.last_outcome}." if store.last_outcome else ".")))


def finally_deadline(settings: Settings) -> RunDeadline | None:
    """How long a workflow run's finally block may take once the run is past its deadline (the run
    stays timed_out, with its reason); None: it does not run then."""
    seconds = settings.finally_after_timeout_seconds
    if seconds <= 0:
        return None
    return RunDeadline(seconds, f"The finally block ran out of the {seconds} s it has after the run timed "
                                "out (WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS)")


def run_deadline(settings: Settings, run: Run) -> RunDeadline:
    server = settings.run_deadline_seconds
    minutes = (run.run_request or {}).get("max_elapsed_time_minutes")
    if isinstance(minutes, int) and 0 < minutes * 60 < server:
        unit = "minute" if minutes == 1 else "minutes"
        return RunDeadline(minutes * 60, "Workflow run exceeded max elapsed runtime limit of "
                                         f"{minutes} {unit} (max_elapsed_time_minutes)")
    return RunDeadline(server, f"The run hit its wall-clock deadline of {server} s "
                               "(WAYFARER_RUN_DEADLINE_SECONDS)")
