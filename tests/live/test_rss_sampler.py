"""The memory measurement of the live tests can fail: a child process that allocates 96 MiB
while the sampler runs shows up in its parent's tree RSS (issue 18)."""

import subprocess
import sys
import textwrap

from tests.live import MiB, RssSampler

CHILD = textwrap.dedent(
    """
    import sys
    block = bytearray(96 * 1024 * 1024)
    block[::4096] = b"\\x01" * len(range(0, len(block), 4096))  # make every page resident
    print("allocated", flush=True)
    sys.stdin.readline()
    """
)
# A parent that starts the allocating child and waits for it, as `mediakeep serve` starts ffmpeg.
PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}], check=True)"


def test_a_child_allocating_96_mib_is_measured() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdin is not None
        assert parent.stdout is not None
        with RssSampler(parent.pid) as memory:
            assert parent.stdout.readline().strip() == "allocated"  # the child has allocated
            memory.sample()  # at least one sample while the block is held, whatever the timing
            parent.stdin.write("\n")
            parent.stdin.flush()
        assert parent.wait(timeout=30) == 0
    assert memory.grown > 90 * MiB, memory.describe()
