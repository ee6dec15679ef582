"""Evidence hashing: same digest as hashlib, streamed, read-only, with progress and cancel."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from deepyn_gui.core.errors import Cancelled, InputError
from deepyn_gui.core.evidence import file_fingerprint, sha256_file


def _write(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("size", [0, 1, 4096, 4097, 3 * 4096 - 1, 100_000])
def test_sha256_matches_hashlib_at_chunk_boundaries(tmp_path: Path, size: int) -> None:
    p = _write(tmp_path / f"f{size}.bin", size)
    assert sha256_file(p, chunk_size=4096) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_sha256_default_chunk_on_a_multi_chunk_file(tmp_path: Path) -> None:
    p = _write(tmp_path / "big.bin", (1 << 20) * 2 + 123)
    assert sha256_file(str(p)) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_progress_is_monotonic_and_complete(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.bin", 10_000)
    calls: list[tuple[int, int]] = []
    sha256_file(p, chunk_size=1024, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 10_000)
    assert calls[-1] == (10_000, 10_000)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) == 1 + 10  # one call per chunk plus the start


def test_cancel_before_start(tmp_path: Path) -> None:
    p = _write(tmp_path / "c.bin", 10_000)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        sha256_file(p, chunk_size=1024, cancel=cancel)


def test_cancel_midway_stops_reading(tmp_path: Path) -> None:
    p = _write(tmp_path / "c.bin", 100_000)
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 3000:
            cancel.set()

    with pytest.raises(Cancelled) as e:
        sha256_file(p, chunk_size=1000, progress=progress, cancel=cancel)
    assert max(seen) == 3000  # not one chunk more was read after the request
    assert "c.bin" in str(e.value)


def test_unreadable_inputs_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        sha256_file(tmp_path / "missing.bin")
    with pytest.raises(InputError, match="folder"):
        sha256_file(tmp_path)
    with pytest.raises(ValueError):
        sha256_file(_write(tmp_path / "x.bin", 10), chunk_size=0)


def test_hashing_leaves_the_file_untouched(tmp_path: Path) -> None:
    p = _write(tmp_path / "evidence.mp4", 50_000)
    st = p.stat()
    before = p.read_bytes()
    os.utime(p, ns=(st.st_atime_ns, 1_600_000_000_000_000_000))
    sha256_file(p, chunk_size=4096)
    assert p.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["evidence.mp4"]


def test_file_fingerprint(tmp_path: Path) -> None:
    p = _write(tmp_path / "e.bin", 12_345)
    fp = file_fingerprint(p)
    assert set(fp) == {"size", "mtime_ns", "sha256"}
    assert fp["size"] == 12_345
    assert fp["mtime_ns"] == p.stat().st_mtime_ns
    assert fp["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="not found"):
        file_fingerprint(tmp_path / "gone.bin")


def test_file_fingerprint_refuses_a_file_that_changes_while_hashed(tmp_path: Path) -> None:
    p = _write(tmp_path / "growing.bin", 20_000)

    def append_once(done: int, total: int) -> None:
        if done == 0:
            with open(p, "ab") as fh:
                fh.write(b"more")

    with pytest.raises(InputError, match="changed while"):
        file_fingerprint(p, progress=append_once)


def test_shared_sample_hash(shared_data: Path) -> None:
    path = shared_data / "seed-sample" / "deep_fake_video.avi"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_evidence_status_rules_live_in_core_without_qt() -> None:
    """verified / changed / never analysed is decided by core; the viewer's Session only relays it."""
    from deepyn_gui.core.evidence_index import (
        CHANGED,
        HASHED,
        VERIFIED,
        IndexRecord,
        changed_notice,
        judge_evidence,
    )

    rec = IndexRecord("k", "a" * 64, "2024-05-01T12:00:00+00:00")
    assert judge_evidence("/x/clip.mp4", "b" * 64).state == HASHED
    assert judge_evidence("/x/clip.mp4", "a" * 64, None, rec).state == VERIFIED
    changed = judge_evidence("/x/clip.mp4", "b" * 64, None, rec)
    assert changed.state == CHANGED and changed.recorded_sha256 == "a" * 64
    # what this session analysed wins over the on-disk index
    assert judge_evidence("/x/clip.mp4", "b" * 64, ("b" * 64, "now"), rec).state == VERIFIED
    text = changed_notice(changed)
    assert "EVIDENCE CHANGED" in text and "clip.mp4" in text and "2024-05-01 12:00 UTC" in text
