"""Chain of custody: the evidence is never written, exports re-verify it and stay out of its folder."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from deepyn_gui.core.errors import ExportError
from deepyn_gui.core.evidence import (
    EvidenceChanged,
    check_output_dir,
    frame_hashes_tsv,
    is_evidence_folder,
    prepare_export,
    require_evidence,
    sha256_file,
    verify_evidence,
    write_frame_hashes,
)
from deepyn_gui.core.export.frames import export_frames, export_raw_frames
from deepyn_gui.core.export.report import write_report
from deepyn_gui.core.export.video import export_annotated_video
from deepyn_gui.core.video import VideoSource

try:
    from tests.exports_support import analyse_clip, shared_analysis, write_test_clip
except ImportError:  # pragma: no cover
    from exports_support import analyse_clip, shared_analysis, write_test_clip  # type: ignore[no-redef]


def _snapshot(path: Path) -> tuple[bytes, int, int, int, list[str]]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_size, stat.S_IMODE(st.st_mode), sorted(os.listdir(path.parent))


def test_evidence_bytes_and_mtime_unchanged_across_open_analyse_export(tmp_path: Path) -> None:
    evidence_dir = tmp_path / "exhibit"
    evidence_dir.mkdir()
    clip = write_test_clip(evidence_dir / "exhibit 7.mp4", n=6)
    os.utime(clip, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))  # a known, old mtime
    clip.chmod(0o444)  # read-only: anything that tried to write would fail loudly
    before = _snapshot(clip)

    with VideoSource(clip) as src:
        src.frame_at(3)
    result = analyse_clip(clip)
    assert result.source.sha256 == hashlib.sha256(before[0]).hexdigest()
    out = tmp_path / "exports"
    files = write_report(result, clip, out, frames="all", video=True, frame_hashes=True, analyst="A. Analyst")
    export_frames(result, clip, [1, 2], out / "more", raw=True)
    export_raw_frames(clip, [0], out / "raw", expected_sha256=result.source.sha256)
    assert verify_evidence(clip, result.source.sha256)

    after = _snapshot(clip)
    assert after == before  # same bytes, mtime, size, mode, and nothing new beside the evidence
    assert files.html and files.video and files.frame_hashes and len(files.frames) == 6
    assert not any(p.is_relative_to(evidence_dir) for p in [files.html, files.video, *files.frames])


def test_changed_evidence_is_detected_and_exports_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "c.mp4", n=4)
    result = analyse_clip(clip)
    with open(clip, "ab") as fh:  # someone tampers with the exhibit after the analysis
        fh.write(b"\0")
    assert not verify_evidence(clip, result.source.sha256)
    assert "EVIDENCE CHANGED" in caplog.text
    with pytest.raises(EvidenceChanged, match="changed since it was analysed"):
        require_evidence(clip, result.source.sha256)
    out = tmp_path / "out"
    for export in (
        lambda: export_frames(result, clip, [0], out),
        lambda: export_annotated_video(result, clip, out / "a.mp4"),
        lambda: write_report(result, clip, out),
        lambda: write_frame_hashes(clip, out / "h.tsv", expected_sha256=result.source.sha256),
    ):
        with pytest.raises(EvidenceChanged):
            export()
    assert not out.exists() or os.listdir(out) == []
    with pytest.raises(EvidenceChanged, match="no SHA-256"):
        require_evidence(clip, "")


def test_exports_refuse_the_evidence_folder_unless_allowed(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    folder = clip.parent
    assert is_evidence_folder(folder, clip)
    assert is_evidence_folder(folder / "sub" / "..", clip)
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    assert is_evidence_folder(link, clip)
    assert not is_evidence_folder(tmp_path, clip)
    for target in (folder, link, folder / "sub" / ".."):
        with pytest.raises(ExportError, match="evidence's own folder"):
            check_output_dir(target, clip)
        with pytest.raises(ExportError, match="evidence's own folder"):
            export_frames(result, clip, [0], target)
    listing = sorted(os.listdir(folder))
    # explicitly allowed: written, and the evidence itself untouched
    digest = sha256_file(clip)
    written = export_frames(result, clip, [0], folder, allow_evidence_dir=True)
    try:
        assert written[0].parent.resolve() == folder.resolve()
        assert sha256_file(clip) == digest
    finally:
        for p in written:
            p.unlink()
    assert sorted(os.listdir(folder)) == listing
    with pytest.raises(ExportError, match="not a folder"):
        check_output_dir(clip, tmp_path / "x.mp4")


def test_prepare_export_creates_the_folder_and_verifies(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    out = prepare_export(clip, result.source.sha256, tmp_path / "a" / "b")
    assert out.is_dir()
    with pytest.raises(EvidenceChanged):
        prepare_export(clip, "0" * 64, tmp_path / "c")


def test_frame_hashes_tsv(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    out = write_frame_hashes(clip, tmp_path / "frames.tsv", expected_sha256=result.source.sha256)
    text = out.read_text()
    assert text == frame_hashes_tsv(clip, result.source.sha256)  # deterministic
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    rows = [ln.split("\t") for ln in text.splitlines() if not ln.startswith("#")]
    import av

    assert any(ln.startswith("#decoder: h264 via PyAV " + av.__version__) for ln in head)
    assert any("libavcodec" in ln and "FFmpeg" in ln for ln in head)
    assert f"#evidence_sha256: {result.source.sha256}" in head
    assert rows[0] == ["frame", "pts_s", "sha256"]
    with VideoSource(clip) as src:
        expected = [
            [str(f.index), f"{f.pts_s:.6f}", hashlib.sha256(f.rgb.tobytes()).hexdigest()] for f in src.frames()
        ]
    assert rows[1:] == expected
    assert len({r[2] for r in rows[1:]}) == len(expected)  # every frame differs (the face moves)
