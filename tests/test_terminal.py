"""The test terminal (tests/support/terminal.py) leaves nothing behind that could take a later
command's output: a reader still polling a closed pty's number reads whatever gets it next."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from tests.support.terminal import Terminal


def test_a_closed_terminal_never_reads_the_next_descriptor_with_its_number(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path, {"PATH": os.environ["PATH"]})
    # A background job keeps the pty open after the shell dies: the reader sees no end of it.
    terminal.send("sleep 60 & echo job=$!\n")
    job = int(re.findall(r"job=(\d+)", terminal.expect("\n", timeout=30) + terminal.expect("$ "))[-1])
    number = terminal.master
    terminal.close()
    held: list[int] = []
    try:
        while True:  # open pipes until a read end has the pty's old number
            read_end, write_end = os.pipe()
            if read_end == number:
                held += [read_end, write_end]
                break
            held.append(read_end)
            if write_end == number:
                os.close(write_end)  # free it again for the next pipe's read end
            else:
                held.append(write_end)
        os.write(write_end, b"the next command's output")
        time.sleep(0.5)  # past the reader's poll interval: a live reader would have taken it
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"the next command's output"
    finally:
        for fd in held:
            os.close(fd)
        os.kill(job, signal.SIGKILL)
