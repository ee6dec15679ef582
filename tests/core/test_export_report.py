"""The HTML report (escaping, sections, self-contained) and the CLI `deepyn report` / `export-frames`."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from pathlib import Path

import pytest

from deepyn_gui import cli
from deepyn_gui.core.export.frames import frame_file_name
from deepyn_gui.core.export.plot import timeline_image, timeline_png
from deepyn_gui.core.export.report import (
    ReportMeta,
    build_report_html,
    card_sections,
    collect_keyframes,
    report_html,
    write_report,
)
from deepyn_gui.core.verdict import clip_cautions, span_level, verdict_words

try:
    from tests.exports_support import TINTED, ColourBackend, analyse_clip, shared_analysis, write_test_clip
except ImportError:  # pragma: no cover
    from exports_support import (  # type: ignore[no-redef]
        TINTED,
        ColourBackend,
        analyse_clip,
        shared_analysis,
        write_test_clip,
    )

HOSTILE = "<img src=x onerror=alert(1)>&<script>alert('x')<\\script>\".mp4"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPYN_DATA_DIR", str(tmp_path / "data"))


def _no_raw_markup(text: str) -> None:
    low = text.lower()
    assert "<script" not in low
    assert "<img src=x" not in low
    # every image is embedded; nothing is fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text)


def test_hostile_file_name_notes_and_analyst_are_escaped(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    evil_dir = tmp_path / "ev"
    evil_dir.mkdir()
    evil = evil_dir / HOSTILE
    shutil.copyfile(clip, evil)
    evil_result = dataclasses.replace(result, source=dataclasses.replace(result.source, path=str(evil)))
    meta = ReportMeta(analyst="<b>Mallory</b>", notes="</pre><script>steal()</script>", generated_utc="2024-01-01")
    html = build_report_html(evil_result, evil, meta)
    _no_raw_markup(html)
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;&lt;script&gt;" in html
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;steal()&lt;/script&gt;" in html
    assert "onerror=alert(1)>" not in html


def test_report_has_every_section_and_the_numbers_of_the_result() -> None:
    clip, result = shared_analysis()
    meta = ReportMeta(analyst="Ann", notes="case 12", generated_utc="2024-05-06T07:08:09+00:00",
                      evidence_verified=True)
    html = build_report_html(result, clip, meta)
    for needle in (
        "Forensic report: astronaut test.mp4", "1. Verdict", "Per person", "2. Score timeline", "3. Keyframes",
        "4. Evidence", "5. Method", "Appendix A. Per-frame results", "2024-05-06T07:08:09+00:00", "Ann", "case 12",
        result.source.sha256, result.model.sha256, result.model.name, result.source.codec, result.source.container,
        f"{result.source.size_bytes:,} bytes",
        verdict_words(result.verdict.label), result.verdict.explanation.split(".")[0],
        "yes — matches",
        # everything another analyst needs to derive the verdict from the scores again
        f"{result.model.threshold:.3f}", f"{span_level(result.model):.3f} (the start of the top score band)",
    ):
        assert needle in html, needle
    for key in result.settings:  # all settings
        assert f"<th width=\"32%\">{key}</th>" in html
    for key in ("version", "python", "av", "numpy"):
        assert f"<th width=\"32%\">{key}</th>" in html  # app / runtime versions
    # the per-frame results are one line pointing at analysis.csv, not a page per 40 frames
    assert f"{len(result.frames)} analysed frames, {len(result.frames)} rows" in html
    assert not re.findall(r"<tr><td class=\"num\">(\d+)</td><td class=\"num\">", html)
    assert "Not analysed" in html and "audio track" in html
    cautions = clip_cautions(result)  # the test clip's faces are small: the report says so beside the verdict
    assert cautions and all(f"<b>Caution for this clip:</b> {c}" in html for c in cautions)
    # keyframes are the most suspicious frames; timeline + keyframes are embedded PNGs
    kfs = collect_keyframes(result, per_track=3, min_gap_s=0.0)
    assert {k.index for k in kfs} <= set(TINTED) and len(kfs) == 3
    assert html.count('src="data:image/png;base64,') >= 2
    _no_raw_markup(html)


def test_report_is_deterministic_and_pure() -> None:
    clip, result = shared_analysis()
    meta = ReportMeta(generated_utc="2024-01-01T00:00:00+00:00")
    assert build_report_html(result, clip, meta) == build_report_html(result, clip, meta)
    assert timeline_png(result) == timeline_png(result)
    img = timeline_image(result)
    assert img.shape == (400, 1320, 3) and img.std() > 10


def test_warnings_for_untrained_incomplete_and_changed_evidence() -> None:
    _clip, result = shared_analysis()
    r = dataclasses.replace(result, model=dataclasses.replace(result.model, trained=False), complete=False,
                            stop_reason="decode error at 3 s")
    html = report_html(r, ReportMeta(evidence_verified=False), None, (), card_text="")
    assert "UNTRAINED" in html and "decode error at 3 s" in html and "no longer matches" in html
    assert "No model card was found" in html


def test_model_card_summary_and_limits() -> None:
    card = ("# my-model\n\nA U-YNet trained **only on real faces**.\nSecond line.\n\n## Known limits\n\n"
            "- Fails on faces under 64 px.\n- Compression below [200 kbit/s](https://x.org).\n\n"
            "### Sub-limit\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Other\n\n- fine\n")
    summary, limits = card_sections(card)
    assert summary == "A U-YNet trained **only on real faces**.\nSecond line."
    assert limits.startswith("- Fails on faces under 64 px.") and "### Sub-limit" in limits and "fine" not in limits
    _clip, result = shared_analysis()
    html = report_html(result, ReportMeta(), None, (), card_text=card)
    # rendered by markdown-it: no raw Markdown left
    assert "<strong>only on real faces</strong>" in html and "**" not in html and "](" not in html
    assert "<li>Fails on faces under 64 px.</li>" in html and "<table>" in html
    assert '<a href="https://x.org">200 kbit/s</a>' in html
    hostile = card.replace("- Fails on", "<script>x</script>\n\n![i](pic.png) ![f](file:///etc/x.png) [j](javascript:alert(1))\n\n- Fails on")
    html = report_html(result, ReportMeta(), None, (), card_text=hostile)
    # raw HTML escaped, no image fetched (alt text instead), no script link
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "[image: i]" in html and 'src="file:' not in html and 'src="pic' not in html
    assert "<img" not in html.split("<h3>Model card")[1] and 'href="javascript' not in html


def test_report_text_has_no_raw_markdown_or_dangling_references() -> None:
    """The bundled card rendered into a report: no ** or ]( left, no 'figure N above' pointing nowhere."""
    import unicodedata

    from deepyn_gui.resources import resource_path

    _clip, result = shared_analysis()
    card = resource_path("models", "uynet_default.md").read_text(encoding="utf-8")
    html = report_html(result, ReportMeta(), None, (), card_text=card)
    assert "Known limits (from the model card)" in html and "darker skin" not in html.split("<h3>Known")[0]
    text = unicodedata.normalize("NFKC", re.sub(r"<[^>]+>", " ", html.split("<body>", 1)[1]))
    assert "**" not in text and "](" not in text
    assert not re.search(r"\b(figure|table|fig\.)\s*\d", text, re.IGNORECASE), re.findall(r".{40}figure.{40}", text)


def test_write_report_package_and_manifest(tmp_path: Path) -> None:
    clip, result = shared_analysis()
    files = write_report(result, clip, tmp_path / "pkg", frames="flagged", analyst="Ann")
    names = sorted(p.relative_to(files.folder).as_posix() for p in files.folder.rglob("*") if p.is_file())
    extra = ["model_card.md"] if files.model_card else []
    assert names == sorted(["analysis.json", "analysis.csv", "verdict.csv", "report.html", "SHA256SUMS", "frames.csv",
                            *extra] + [f"frames/{frame_file_name(i)}" for i in TINTED])
    # frames.csv: the per-frame hashes the report summarises in one line; its own hash is in the report
    import csv as _csv

    listed = list(_csv.DictReader(files.frames_csv.open()))
    assert [int(r["frame"]) for r in listed] == list(TINTED)
    for r in listed:
        assert hashlib.sha256((files.folder / r["file"]).read_bytes()).hexdigest() == r["sha256"]
    assert hashlib.sha256(files.frames_csv.read_bytes()).hexdigest() in files.html.read_text()
    # every file, frames included, is in SHA256SUMS
    assert {ln.split("  ", 1)[1] for ln in (files.folder / "SHA256SUMS").read_text().splitlines()} == \
        set(names) - {"SHA256SUMS"}
    for line in (files.folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((files.folder / name).read_bytes()).hexdigest() == digest
    html = files.html.read_text()
    assert hashlib.sha256(files.json.read_bytes()).hexdigest() in html  # the report lists the data's hash
    import csv

    rows = list(csv.DictReader(files.verdict_csv.open()))
    assert rows[0]["scope"] == "video" and rows[0]["label"] == result.verdict.label
    assert float(rows[0]["fake_score"]) == pytest.approx(result.verdict.fake_score, abs=1e-6)
    assert [int(r["track"]) for r in rows[1:]] == [t.track for t in result.verdict.tracks]


# ---------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def colour_backend(monkeypatch: pytest.MonkeyPatch) -> list[ColourBackend]:
    """Make the CLI's --backend resolve to the deterministic test backend; records each instance."""
    made: list[ColourBackend] = []

    def factory(args):  # type: ignore[no-untyped-def]
        b = ColourBackend()
        made.append(b)
        return b

    import deepyn_gui.commands.common as common_cmd

    monkeypatch.setattr(common_cmd, "backend_from_args", factory)
    return made


def test_cli_report_then_export_frames_reuses_the_cache(tmp_path: Path, colour_backend: list[ColourBackend],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "clip.mp4", n=8)
    out = tmp_path / "report"
    rc = cli.main(["report", str(clip), "--out", str(out), "--frames", "all", "--video", "--frame-hashes",
                   "--analyst", "Ann <ann@x>", "--notes", "n & m", "--detector", "haar", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert colour_backend[0].calls > 0
    for name in ("report.html", "analysis.json", "analysis.csv", "annotated.mp4", "frame_hashes.tsv", "SHA256SUMS"):
        assert (out / name).is_file(), name
    assert len(list((out / "frames").glob("*.png"))) == 8
    html = (out / "report.html").read_text()
    assert "Ann &lt;ann@x&gt;" in html and "n &amp; m" in html
    # export-frames finds the cached analysis: no inference at all this time
    rc = cli.main(["export-frames", str(clip), "--frames", "1,4-5", "--out", str(tmp_path / "f"), "--raw",
                   "--detector", "haar", "-q"])
    assert rc == 0
    assert colour_backend[1].calls == 0
    got = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert got == sorted([frame_file_name(i) for i in (1, 4, 5)] + [frame_file_name(i, True) for i in (1, 4, 5)])
    # ... and its annotated PNGs are byte-identical to the report's
    for i in (1, 4, 5):
        assert (tmp_path / "f" / frame_file_name(i)).read_bytes() == (out / "frames" / frame_file_name(i)).read_bytes()


def test_cli_refuses_the_evidence_folder_and_bad_frames(tmp_path: Path, colour_backend: list[ColourBackend],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ev").mkdir()
    clip = write_test_clip(tmp_path / "ev" / "clip.mp4", n=3)
    rc = cli.main(["report", str(clip), "--out", str(tmp_path / "ev"), "-q"])
    assert rc == 2 and "evidence's own folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == ["clip.mp4"]
    assert colour_backend == []  # refused before any analysis
    rc = cli.main(["export-frames", str(clip), "--frames", "7", "--out", str(tmp_path / "o"), "--raw-only", "-q"])
    assert rc == 2 and "out of range" in capsys.readouterr().err
    rc = cli.main(["export-frames", str(clip), "--frames", "0-2", "--out", str(tmp_path / "o"), "--raw-only", "-q"])
    assert rc == 0 and colour_backend == []  # raw frames need no analysis
    assert len(list((tmp_path / "o").glob("*_raw.png"))) == 3


def test_analyse_clip_helper_is_real() -> None:
    """Guard for the fixtures above: the test backend scores the tinted frames high and the rest low."""
    _clip, result = shared_analysis()
    scores = {fr.index: fr.max_score for fr in result.frames}
    assert all(scores[i] is not None and scores[i] >= 0.5 for i in TINTED)
    assert all(s is not None and s < 0.5 for i, s in scores.items() if i not in TINTED)
    assert analyse_clip is not None
