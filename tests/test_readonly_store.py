"""Reading a store writes nothing: `evolve runs`, `show`, `top` and `export` open it read-only, so a
store on read-only media, in a directory without write permission, or named by a `mode=ro` URI is
read, and no file is ever created beside it (issue 14, item 3)."""

import contextlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from evolve.cli import main
from evolve.errors import StoreError
from evolve.store import SCHEMA_VERSION, RunConfig, Store

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "store_v1.db"
READERS = [["runs"], ["show", "1"], ["top", "1", "-n", "3"], ["export", "1", "1", "--format", "json"]]


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory) -> Path:
    """A store with one finished run (the sleep space: its evaluations cost nothing)."""
    path = tmp_path_factory.mktemp("made") / "runs.db"
    assert main(["run", "sleep", "--budget", "20", "--space-opt", "seconds=0", "--db", str(path)]) == 0
    return path


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in `directory`: its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def read_all(db: str, capsys) -> list[str]:
    """The output of every reading command on `db`; each must succeed."""
    outputs = []
    for command in READERS:
        status = main([*command, "--db", db])
        out, err = capsys.readouterr()
        assert status == 0, (command, err)
        outputs.append(out)
    return outputs


def test_readers_leave_a_writable_store_and_its_directory_as_they_were(finished_store, tmp_path, capsys):
    directory = tmp_path / "store"
    directory.mkdir()
    shutil.copy(finished_store, directory / "runs.db")
    before = snapshot(directory)
    outputs = read_all(str(directory / "runs.db"), capsys)
    assert snapshot(directory) == before  # no byte, no timestamp, no -wal or -shm file
    assert "sleep" in outputs[0] and "finished (budget)" in outputs[0]
    assert '"format": "evolve.program"' in outputs[3]


def _read_only_directory(directory: Path):
    """`directory` made read-only for this process: a read-only bind mount where this process may
    mount (root), else the permission bits (which bind every other user)."""
    if os.geteuid() == 0:
        mount = directory.with_name(directory.name + "-ro")
        mount.mkdir()
        ok = subprocess.run(["mount", "--bind", str(directory), str(mount)], capture_output=True).returncode == 0
        if ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], capture_output=True).returncode == 0:
            return mount, lambda: subprocess.run(["umount", str(mount)], check=True)
        if ok:
            subprocess.run(["umount", str(mount)], check=True)
        pytest.skip("running as root, and no read-only bind mount can be made here")
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)
    return directory, lambda: directory.chmod(0o755)


def test_a_store_on_read_only_media_is_read(finished_store, tmp_path, capsys):
    directory = tmp_path / "media"
    directory.mkdir()
    shutil.copy(finished_store, directory / "runs.db")
    before = snapshot(directory)
    readable, restore = _read_only_directory(directory)
    try:
        with pytest.raises(OSError):  # it really is read-only
            (readable / "probe").write_text("x")
        outputs = read_all(str(readable / "runs.db"), capsys)
    finally:
        restore()
    assert snapshot(directory) == before
    assert "finished (budget)" in outputs[0] and "top programs:" in outputs[1]


def test_a_mode_ro_uri_is_read_and_creates_nothing(finished_store, tmp_path, capsys):
    shutil.copy(finished_store, tmp_path / "runs.db")
    before = snapshot(tmp_path)
    uri = f"file:{tmp_path / 'runs.db'}?mode=ro"
    outputs = read_all(uri, capsys)
    assert snapshot(tmp_path) == before
    assert "finished (budget)" in outputs[0]
    # a command that must write says so in one line, and writes nothing
    assert main(["resume", "1", "--db", uri]) == 2
    assert "evolve: error:" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_reader_sees_what_a_live_driver_has_committed(tmp_path):
    """While a driver holds the store open (its write-ahead log not yet folded into the file), a
    reader still sees every committed run."""
    path = str(tmp_path / "live.db")
    with Store(path) as driver:
        driver.create_run(RunConfig("sleep"))
        assert os.path.exists(path + "-wal")
        with Store(path, read_only=True) as reader:
            assert [run.id for run in reader.runs()] == [1]
            driver.create_run(RunConfig("sleep"))
            assert [run.id for run in reader.runs()] == [1, 2]


def test_an_older_store_is_read_as_migrated_and_left_as_it_was(tmp_path, capsys):
    path = tmp_path / "v1.db"
    shutil.copyfile(FIXTURE_V1, path)
    before = snapshot(tmp_path)
    with Store(str(path), read_only=True) as store:
        assert [run.id for run in store.runs()] == [1, 2, 3]
        assert store.run(2).state == "stopped (driver gone)"
        assert len(store.pending(2)) == 4
        version = dict(store.db.execute("SELECT key, value FROM evolve_meta"))["version"]
        assert version == str(SCHEMA_VERSION)  # migrated, in memory
    assert main(["runs", "--db", str(path)]) == 0 and "pam-rt" in capsys.readouterr().out
    assert snapshot(tmp_path) == before
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "evolve_meta" not in tables  # on disk, still version 1


def test_a_read_only_store_cannot_be_written(finished_store, tmp_path):
    shutil.copy(finished_store, tmp_path / "runs.db")
    before = snapshot(tmp_path)
    with Store(str(tmp_path / "runs.db"), read_only=True) as store:
        with pytest.raises((StoreError, sqlite3.OperationalError), match="readonly"):
            store.create_run(RunConfig("sleep"))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content, message", [
    (None, "no store at"),
    (b"hello, not a database\n", "is not an evolve store (not an SQLite database)"),
    ("foreign", "is not an evolve store: an SQLite database of another program (tables: runs)"),
])
def test_what_is_not_a_store_is_refused_by_readers_and_left_alone(tmp_path, content, message, capsys):
    path = tmp_path / "x.db"
    if content == "foreign":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, config TEXT)")
            db.commit()
    elif content is not None:
        path.write_bytes(content)
    before = snapshot(tmp_path)
    for command in READERS:
        assert main([*command, "--db", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(tmp_path) == before
