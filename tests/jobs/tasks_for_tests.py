"""Test-only tasks. They are not product code: worker processes register them when the
environment names this module (MEDIAKEEP_TEST_TASKS=tests.jobs.tasks_for_tests, with the
repository root on PYTHONPATH), and the test process registers them by importing it.

- `test.child_sleep`: runs `sleep N` as a real child process (its PID is appended to
  `params.pid_file`), then writes one output object; for cancel and worker-kill tests.
- `test.crash`: always raises, to prove a poison job ends `failed` after its attempts.
- `test.kill_first`: writes its output, then SIGKILLs its own worker process on the first
  attempt; the retry rewrites the same output and completes.
"""

import os
import signal
from pathlib import Path
from typing import Any

from mediakeep.jobs.registry import JobFailed, TaskContext, task


def output_key(ctx: TaskContext) -> str:
    """Deterministic: one key per job, whatever the attempt."""
    return f"{ctx.job.org_id}/test-outputs/{ctx.job.id}.txt"


async def write_output(ctx: TaskContext, text: str) -> dict[str, Any]:
    storage = ctx.services.storage
    key = output_key(ctx)
    path = storage.spool_path(f"{ctx.job.org_id}/incoming/{ctx.job.id}-{ctx.job.attempt}")
    path.write_text(text)
    await storage.commit_file(path, key, "text/plain")
    return {"key": key}


def _note_pid(ctx: TaskContext, pid: int) -> None:
    pid_file = ctx.job.params.get("pid_file")
    if pid_file:
        with Path(pid_file).open("a") as handle:
            handle.write(f"{pid} {os.getpid()} {ctx.job.attempt}\n")


@task("test.child_sleep")
async def child_sleep(ctx: TaskContext) -> dict[str, Any]:
    seconds = float(ctx.job.params.get("seconds", 30))
    child = await ctx.start_process(["sleep", str(seconds)], capture=False)
    _note_pid(ctx, child.pid)
    await ctx.report_progress(10)
    ended = await child.wait()
    if ended.returncode != 0:
        raise JobFailed(f"sleep ended with status {ended.returncode}")
    await ctx.report_progress(90)
    return await write_output(ctx, f"slept {seconds}s on attempt {ctx.job.attempt}\n")


@task("test.crash")
async def crash(ctx: TaskContext) -> dict[str, Any]:
    raise RuntimeError(f"deliberate crash on attempt {ctx.job.attempt}\n  at line 42 of secret.py")


@task("test.kill_first")
async def kill_first(ctx: TaskContext) -> dict[str, Any]:
    result = await write_output(ctx, f"attempt {ctx.job.attempt}\n")
    _note_pid(ctx, os.getpid())
    if ctx.job.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
