"""Signals (issue 8, item 8): SIGINT exits 130 and SIGTERM 143, one line on stderr, no output file written or changed.

The command runs in a subprocess on a check made long on purpose (a huge ``--samples`` and ``--timeout``); the test
waits until the run has started (torch is loaded) and signals it. What is asserted, the exit code, the one line and
the files, does not depend on when the signal lands.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _started(proc: subprocess.Popen, patience: float = 60.0) -> None:
    """Wait until the run is under way: onnxruntime (loaded after torch, to check the imported model) is mapped
    into the process, then a moment more. Where /proc is missing, a few seconds."""
    maps = Path(f"/proc/{proc.pid}/maps")
    end = time.monotonic() + patience
    while time.monotonic() < end and proc.poll() is None:
        try:
            if "onnxruntime" in maps.read_text():
                break
        except OSError:
            if not Path("/proc/self/maps").exists():
                time.sleep(3.0)
                break
        time.sleep(0.1)
    time.sleep(1.0)


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a runner that ignores SIGINT must not make the child ignore it


@pytest.mark.parametrize("signum,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_exit_code_and_no_partial_outputs(tmp_path, signum, code, word):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.json").write_text("previous run")
    args = [sys.executable, "-m", "certify.cli", str(EXAMPLES / "tank_tanh_unstable.onnx"),
            "--region", str(EXAMPLES / "box.yaml"), "--check", "contraction", "--samples", "2000000000",
            "--timeout", "3000", "--json", str(out / "old.json"), "--report", str(out / "r.html"),
            "--junit", str(out / "j.xml")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=_default_sigint)
    try:
        _started(proc)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in err, err
    assert sorted(os.listdir(out)) == ["old.json"] and (out / "old.json").read_text() == "previous run"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_outputs_are_written_waits_for_them(tmp_path, signum):
    import certify.cli as cli
    from certify.report.output import write_all_atomic

    files = [(tmp_path / "a.json", "{}\n"), (tmp_path / "b.xml", "<testsuite/>")]
    expected = KeyboardInterrupt if signum == signal.SIGINT else cli.Terminated
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # as torch's and the solvers' threads: the signal may reach it
    other.start()
    # a suite started as a shell's background job inherits SIGINT ignored (and hold_signals keeps an ignored signal
    # ignored): this test takes the interpreter's own handler for its length
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(expected) as exc:
            with cli.hold_signals():
                os.kill(os.getpid(), signum)  # held until the files are in place, then taken
                time.sleep(0.05)
                write_all_atomic(files)
    finally:
        signal.signal(signal.SIGINT, before)
        stop.set()
        other.join()
    assert exc.value.after_outputs
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.xml"] and (tmp_path / "a.json").read_text() == "{}\n"
