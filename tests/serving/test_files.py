"""The small file helpers every part shares: one-line error causes and all-or-nothing writes."""

from __future__ import annotations

import pytest

from contract.files import first_line, write_atomic, write_atomic_with


def test_first_line_is_the_message_first_line_cut_to_the_limit():
    error = RuntimeError("  no route to host: " + "x" * 300 + "\nTraceback detail\nmore")
    assert first_line(error) == ("no route to host: " + "x" * 300)[:200]
    assert first_line(error, limit=12) == "no route to "


def test_first_line_of_an_error_without_message_is_its_type_name():
    assert first_line(ConnectionResetError()) == "ConnectionResetError"
    assert first_line(ValueError("\n")) == "ValueError"


def test_write_atomic_replaces_the_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    write_atomic(target, b"new bytes")
    assert target.read_bytes() == b"new bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_write_atomic_that_fails_removes_its_partial_and_raises(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_bytes(b"kept")  # a folder where the file should go: the replace fails
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (target / "inside").read_bytes() == b"kept"


def test_write_atomic_with_an_interrupted_writer_keeps_the_old_file(tmp_path):
    target = tmp_path / "features.npy"
    target.write_bytes(b"old")

    def write(out):
        out.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic_with(target, write)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["features.npy"]


def test_write_atomic_with_streams_what_the_writer_writes(tmp_path):
    target = tmp_path / "images"
    write_atomic_with(target, lambda out: [out.write(bytes([i]) * 3) for i in range(3)])
    assert target.read_bytes() == b"\x00\x00\x00\x01\x01\x01\x02\x02\x02"
