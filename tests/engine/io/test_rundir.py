"""The run folder's one-writer lock, as another process sees it."""

from __future__ import annotations

import subprocess
import sys

from engine.io.rundir import being_written, writing_alone


def test_a_folder_held_by_a_job_is_seen_as_being_written_from_another_process(tmp_path):
    run = tmp_path / "run"
    assert not being_written(run)  # no such folder: nobody writes it
    probe = [sys.executable, "-c", "import sys; from engine.io.rundir import being_written; "
             "sys.exit(0 if being_written(sys.argv[1]) else 1)", str(run)]
    with writing_alone(run):
        assert subprocess.run(probe).returncode == 0
    assert subprocess.run(probe).returncode == 1 and not being_written(run)  # released with the job
