"""Output files never lose data (issue 8, item 6): no output may name an input or another output, writability is
checked for real before any work, and every file is written atomically (a full disk leaves the old file)."""

import errno
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import certify.cli as cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ZOO = ROOT / "benchmarks" / "zoo"
FAST = ["--check", "weight_norm", "--samples", "500"]


@pytest.fixture
def model(tmp_path):
    """A copy of the example model and region in tmp_path (never the repository's own files)."""
    shutil.copy(EXAMPLES / "tank_relu.onnx", tmp_path / "m.onnx")
    shutil.copy(EXAMPLES / "box.yaml", tmp_path / "box.yaml")
    return tmp_path / "m.onnx", tmp_path / "box.yaml"


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the verification itself starts: a refused output must be refused before any work."""
    import certify.api

    def verify(*args, **kwargs):
        raise AssertionError("the run started although an output path is unusable")

    monkeypatch.setattr(certify.api, "verify", verify)


def refused(capsys, args, *needles):
    code = cli.run([str(a) for a in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 3, err
    assert len(lines) == 1 and all(n in lines[0] for n in needles), err
    return lines[0]


def test_output_equal_to_the_model_is_refused(model, capsys, no_work):
    m, box = model
    before = m.read_bytes()
    for option in ("--json", "--junit"):
        refused(capsys, [m, "--region", box, option, m], option, str(m), "model")
    assert m.read_bytes() == before


def test_output_equal_to_the_region_file_is_refused(model, capsys, no_work):
    m, box = model
    before = box.read_bytes()
    refused(capsys, [m, "--region", box, "--json", box], "--json", "region file")
    refused(capsys, [m, "--region", box, "--junit", box], "--junit", "region file")
    assert box.read_bytes() == before


def test_same_file_through_relative_paths_symlinks_and_hard_links(model, capsys, monkeypatch, no_work):
    m, box = model
    monkeypatch.chdir(m.parent)
    before = m.read_bytes()
    refused(capsys, ["m.onnx", "--region", "box.yaml", "--json", "./m.onnx"], "--json ./m.onnx", "model")
    (m.parent / "sub").mkdir()
    refused(capsys, ["./sub/../m.onnx", "--region", "box.yaml", "--junit", "m.onnx"], "--junit", "model")
    (m.parent / "link.json").symlink_to(m)
    refused(capsys, ["m.onnx", "--region", "box.yaml", "--json", "link.json"], "--json link.json", "model")
    os.link(m, m.parent / "hard.json")
    refused(capsys, ["m.onnx", "--region", "box.yaml", "--json", "hard.json"], "--json hard.json", "model")
    assert m.read_bytes() == before


def test_two_outputs_on_one_path_are_refused(model, capsys, monkeypatch, no_work):
    m, box = model
    monkeypatch.chdir(m.parent)
    refused(capsys, [m, "--region", box, "--json", "r.json", "--junit", "./r.json"], "--junit ./r.json", "--json")
    refused(capsys, [m, "--region", box, "--report", "r.md", "--junit", "r.md"], "--junit r.md", "--report")
    assert not (m.parent / "r.json").exists() and not (m.parent / "r.md").exists()


def test_system_file_and_its_controller_are_inputs(tmp_path, capsys, no_work):
    for name in ("double_integrator.system.yaml", "double_integrator_controller.onnx", "double_integrator.box.yaml"):
        shutil.copy(ZOO / name, tmp_path / name)
    system, box = tmp_path / "double_integrator.system.yaml", tmp_path / "double_integrator.box.yaml"
    controller = tmp_path / "double_integrator_controller.onnx"
    before = controller.read_bytes(), system.read_bytes()
    refused(capsys, [system, "--region", box, "--json", controller], "--json", "controller")
    refused(capsys, [system, "--region", box, "--junit", system], "--junit", "model")
    assert (controller.read_bytes(), system.read_bytes()) == before


def test_unwritable_outputs_are_refused_before_any_work(model, capsys, tmp_path, no_work):
    m, box = model
    refused(capsys, [m, "--region", box, "--json", f"{tmp_path}/missing/"], "--json", "folder")
    assert not (tmp_path / "missing").exists()
    refused(capsys, [m, "--region", box, "--json", tmp_path / "missing" / "r.json"], "--json", "does not exist")
    refused(capsys, [m, "--region", box, "--junit", tmp_path], "--junit", "is a folder")
    (tmp_path / "out.md").mkdir()
    refused(capsys, [m, "--region", box, "--report", tmp_path / "out.md"], "--report", "is a folder")
    if Path("/dev/full").exists():
        refused(capsys, [m, "--region", box, "--json", "/dev/full"], "--json /dev/full", "not a regular file")
    if Path("/proc/self").is_dir():
        refused(capsys, [m, "--region", box, "--report", "/proc/x.html"], "--report /proc/x.html", "/proc")
    fifo = tmp_path / "fifo.xml"
    os.mkfifo(fifo)
    refused(capsys, [m, "--region", box, "--junit", fifo], "--junit", "not a regular file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(model, capsys, tmp_path, no_work):
    m, box = model
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused(capsys, [m, "--region", box, "--json", locked / "r.json"], "--json", "cannot create a file")
    finally:
        locked.chmod(0o700)


def test_every_output_written_whole_and_no_temporary_file_left(model, capsys, tmp_path):
    m, box = model
    out = tmp_path / "out"
    out.mkdir()
    (out / "r.json").write_text("old")
    code = cli.run([str(a) for a in [m, "--region", box, *FAST, "--json", out / "r.json", "--report", out / "r.md",
                                     "--junit", out / "j.xml"]])
    assert code == 0, capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["j.xml", "r.json", "r.md"]
    assert json.loads((out / "r.json").read_text())["verdict"] == "certified"
    assert ET.parse(out / "j.xml").getroot().tag == "testsuite" and "# certify report" in (out / "r.md").read_text()
    assert oct((out / "r.md").stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # an ordinary file, not 0600


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_full_disk_keeps_the_old_files(model, capsys, tmp_path, monkeypatch):
    m, box = model
    (tmp_path / "r.json").write_text("old json")
    (tmp_path / "j.xml").write_text("old junit")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code = cli.run([str(a) for a in [m, "--region", box, *FAST, "--json", tmp_path / "r.json",
                                     "--junit", tmp_path / "j.xml"]])
    err = capsys.readouterr().err
    assert code == 3 and "No space left on device" in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "r.json").read_text() == "old json" and (tmp_path / "j.xml").read_text() == "old junit"
    assert sorted(os.listdir(tmp_path)) == ["box.yaml", "j.xml", "m.onnx", "r.json"]  # no temporary file left


def test_symlinked_output_replaces_the_target_and_keeps_the_link(model, capsys, tmp_path):
    m, box = model
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert cli.run([str(a) for a in [m, "--region", box, *FAST, "--json", tmp_path / "link.json"]]) == 0
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text())["schema"] == "certify/1"
