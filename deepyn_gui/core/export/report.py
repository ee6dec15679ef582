"""The forensic report: one self-contained HTML file (images embedded, every data string escaped).

Built from the same :class:`AnalysisResult` as every other export, so the numbers in the report are
the numbers in the JSON/CSV. Nothing in it is fetched from elsewhere (images are ``data:`` URIs and a
Content-Security-Policy forbids scripts), and every string that came from data (file names, notes,
analyst name, model card, error messages) goes through :func:`html.escape`, so a hostile file name
such as ``<script>…</script>.mp4`` is shown as text. Qt prints the same HTML to PDF
(``deepyn_gui.qt.export_actions.html_to_pdf``); core stays Qt-free by taking the printer as a callback.

Size (~730 lines): the report's sections are one HTML document built by one escaping helper set;
splitting the sections across modules would spread the escaping rules that keep it safe.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
import re
import string
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from ..errors import Cancelled, ExportError
from ..model.card import card_sections
from ..model.card import model_card_text as card_text_for
from ..results import AnalysisResult
from ..verdict import DEFAULT_BANDS, SPAN_LEVEL_NAMES, clip_cautions, not_analysed, span_level, verdict_words
from .annotate import AnnotateStyle, Caption, annotate, encode_png, timecode
from .atomic import write_bytes_atomic
from .frames import DEFAULT_TOP_FRAMES, flagged_spans, frame_lookup, top_frames

ProgressFn = Callable[[str, int, int], None]
PdfWriter = Callable[[str, Path], object]

REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
MANIFEST = "SHA256SUMS"


def e(value: object) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def data_uri_png(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class Keyframe:
    """A frame chosen to show one person at their most suspicious (or where a flagged span starts/ends)."""

    track: int
    index: int
    pts_s: float
    score: float | None
    why: str = ""


@dataclass(frozen=True)
class ExportedFile:
    name: str
    sha256: str
    size: int


@dataclass
class ReportMeta:
    """What the report says beyond the result: who, when, notes, and what was exported with it."""

    analyst: str = ""
    notes: str = ""
    generated_utc: str = ""
    evidence_verified: bool | None = None  # re-hashed just before writing: True/False; None = not checked
    files: list[ExportedFile] = field(default_factory=list)


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------- keyframes


def collect_keyframes(
    result: AnalysisResult, per_track: int = DEFAULT_TOP_FRAMES, min_gap_s: float = 1.0, span_ends: bool = True
) -> list[Keyframe]:
    """The frames the report prints: each person's ``per_track`` most suspicious frames (at least
    ``min_gap_s`` apart, so not near-duplicates) plus the first and last frame of each flagged span.

    When no face was scored, the first analysed frame with a face (or else the middle analysed frame)
    is shown so the reader still sees what the model saw.
    """
    top = top_frames(result, per_track, min_gap_s)
    out = [Keyframe(t, idx, pts, score, f"one of person {t}'s {per_track} most suspicious frames")
           for t, idx, pts, score in top]
    if span_ends:
        shown = {k.index for k in out}
        lookup = frame_lookup(result)
        for a, b in flagged_spans(result):
            for idx, end in ((a, "first"), (b, "last")):
                fr = lookup[idx]
                if idx in shown or not fr.faces:
                    continue
                shown.add(idx)
                face = max(fr.faces, key=lambda f: -1.0 if f.fake_score is None else f.fake_score)
                out.append(Keyframe(face.track, idx, fr.pts_s, face.fake_score,
                                    f"{end} frame of the flagged span {a}–{b}"))
    out.sort(key=lambda k: (k.track, k.index))
    if not out and result.frames:
        with_face = [fr for fr in result.frames if fr.faces]
        fr = with_face[0] if with_face else result.frames[len(result.frames) // 2]
        track = fr.faces[0].track if fr.faces else -1
        out.append(Keyframe(track, fr.index, fr.pts_s, None, "no face was scored; this shows what the model saw"))
    return out


def render_keyframes(
    result: AnalysisResult,
    video_path: str | os.PathLike[str],
    keyframes: Sequence[Keyframe],
    style: AnnotateStyle | None = None,
    max_width: int = 720,
) -> list[tuple[Keyframe, bytes]]:
    """Annotated PNGs of the keyframes, scaled down to ``max_width`` for the page."""
    from ..video import VideoSource

    style = style or AnnotateStyle.for_result(result)
    lookup = frame_lookup(result)
    out: list[tuple[Keyframe, bytes]] = []
    with VideoSource(video_path, stream=result.settings.get("video_stream")) as src:
        for kf in sorted(keyframes, key=lambda k: k.index):
            frame = src.frame_at(kf.index)
            img = annotate(frame.rgb, lookup.get(kf.index), style, Caption.for_frame(result, kf.index, frame.pts_s))
            if img.shape[1] > max_width:
                h = round(img.shape[0] * max_width / img.shape[1])
                img = cv2.resize(img, (max_width, h), interpolation=cv2.INTER_AREA)
            out.append((kf, encode_png(img)))
    order = {(k.track, k.index): n for n, k in enumerate(keyframes)}
    out.sort(key=lambda p: order.get((p[0].track, p[0].index), 0))
    return out


# ---------------------------------------------------------------------------------------- model card


def model_card_text(result: AnalysisResult) -> str:
    """The model card's Markdown if it can be found (beside the model file), else ''."""
    return card_text_for(result.model)


def render_markdown(text: str) -> str:
    """Markdown (a model card) as safe HTML, by markdown-it-py (CommonMark + tables).

    Raw HTML in the source is escaped, not passed through (``html: False``), links are limited to
    markdown-it's safe schemes (a ``javascript:`` link stays text), and an image becomes its alt text:
    the report fetches nothing and shows only what its author put in it.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")

    def image_as_text(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        alt = "".join(t.content for t in (tokens[idx].children or []))
        return f"[image: {html.escape(alt)}]"

    md.add_render_rule("image", image_as_text)
    return str(md.render(text))


# ---------------------------------------------------------------------------------------- HTML


_TABLE = '<table width="100%" cellspacing="0" cellpadding="3" border="1">'
_ZWSP = "\u200b"
#: Where a long token may wrap in print: after _ / \ and after a dot between letters (file names,
#: dotted setting keys), so narrow columns break at separators instead of mid-word.
_WRAP_AFTER = re.compile(r"(?<=[_/\\])(?=\w)|(?<=[A-Za-z]\.)(?=[A-Za-z])")


def _wrap_points(body: str) -> str:
    """Add zero-width break opportunities to the text (never the tags or attributes) of ``body``."""
    return re.sub(r">([^<]+)<", lambda m: ">" + _WRAP_AFTER.sub(_ZWSP, m.group(1)) + "<", body)


def _kv_table(rows: Iterable[tuple[str, Any]], mono_keys: Iterable[str] = ()) -> str:
    mono = set(mono_keys)
    out = [_TABLE]
    for k, v in rows:
        cls = ' class="mono"' if k in mono else ""
        out.append(f'<tr><th width="32%">{e(k)}</th><td{cls}>{e(v)}</td></tr>')
    out.append("</table>")
    return "\n".join(out)


def _fmt_score(s: float | None) -> str:
    return "—" if s is None else f"{s:.3f}"


def _verdict_class(label: str) -> str:
    return {"fake": "v-fake", "uncertain": "v-uncertain", "real": "v-real"}.get(label, "v-none")


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k in sorted(d):
        v = d[k]
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _flatten(v, key + ".")
        elif isinstance(v, (list, tuple)):
            rows.append((key, ", ".join(str(x) for x in v)))
        else:
            rows.append((key, "—" if v is None else v))
    return rows


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if len(png) >= 24 and png[:8] == b"\x89PNG\r\n\x1a\n":
        return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return 600, 400


def _keyframe_width(png: bytes, max_w: int = 600, max_h: int = 380) -> int:
    """Display width so two keyframes (image + heading) fit on an A4 page whatever the aspect ratio."""
    w, h = _png_size(png)
    return max(120, min(max_w, round(max_h * w / max(h, 1))))


#: What each file of the package holds, for the report's file list.
FILE_ROLES: dict[str, str] = {
    "analysis.json": "the whole analysis: every frame, face, box, score, setting (schema deepyn.analysis/1)",
    "analysis.csv": "one row per face per analysed frame (frames without a face once): the per-frame results",
    "verdict.csv": "the verdict for the video and for each person",
    "model_card.md": "the model card, full text: training data, method, validation results, limits",
    "frames.csv": "frame, time, file name, size and SHA-256 of each annotated frame under frames/",
    "frame_hashes.tsv": "SHA-256 of every decoded frame of the evidence",
    "annotated.mp4": "the clip with the overlay drawn on every frame (H.264)",
}


def report_html(
    result: AnalysisResult,
    meta: ReportMeta,
    timeline: bytes | None = None,
    keyframes: Sequence[tuple[Keyframe, bytes]] = (),
    card_text: str | None = None,
    print_layout: bool = False,
) -> str:
    """The report as one HTML string. Pure: same inputs, same text.

    ``print_layout`` adds invisible break opportunities after separators (for the PDF's narrow table
    columns); the words are the same.
    """
    src, model, v = result.source, result.model, result.verdict
    name = Path(src.path).name
    generated = meta.generated_utc or now_utc()
    card = model_card_text(result) if card_text is None else card_text
    summary_md, limits_md = card_sections(card)
    by_name = {f.name: f for f in meta.files}
    parts: list[str] = []
    add = parts.append

    add(f"<h1>Forensic report: {e(name)}</h1>")
    add(f'<p class="small">DeepYN Viewer {e(result.app.get("version", ""))} — report generated {e(generated)} '
        f"— analysis run {e(result.created_utc or 'unknown')}</p>")
    if meta.analyst or meta.notes:
        add(_kv_table([("Analyst", meta.analyst or "—"), ("Notes", meta.notes or "—")]))
    if meta.evidence_verified is False:
        add('<p class="alarm">WARNING: the evidence file no longer matches the SHA-256 recorded at analysis '
            "time. The file has changed since it was analysed; these findings may not describe it.</p>")
    if not model.trained:
        add('<p class="alarm">The model used is UNTRAINED: its scores and masks mean nothing. '
            "Do not use this report to judge the video.</p>")
    if not result.complete:
        add(f'<p class="warn">The analysis is incomplete: {e(result.stop_reason or "stopped early")}. '
            "The findings cover only the frames that were analysed.</p>")
    if result.warnings:  # every decode warning reaches the report, not only the JSON
        add('<p class="warn">Warnings while reading the evidence:</p><ul>'
            + "".join(f"<li>{e(w)}</li>" for w in result.warnings) + "</ul>")

    # verdict
    add("<h2>1. Verdict</h2>")
    score = "" if v.fake_score is None else f" — fake score {v.fake_score:.3f}"
    band = f" — band: {e(v.band)}" if v.band else ""
    add(f'<p class="verdict {_verdict_class(v.label)}">{e(verdict_words(v.label))}{score}{band}</p>')
    add(f"<p>{e(v.explanation)}</p>")
    for caution in clip_cautions(result):
        add(f'<p class="warn"><b>Caution for this clip:</b> {e(caution)}</p>')
    add(f'<p class="small">Aggregator: {e(v.aggregator)}; decision threshold {v.threshold:.3f} '
        f"(scores at or above it read as manipulated; below {min(model.real_below, model.threshold):.3f} as real; "
        "between as uncertain). A score is the model's estimate, not proof.</p>")
    add("<p><b>Not analysed</b> (this verdict says nothing about them):</p>")
    add("<ul>" + "".join(f"<li>{e(x)}</li>" for x in not_analysed(result)) + "</ul>")

    add("<h3>Per person</h3>")
    if v.tracks:
        add(f'{_TABLE}<tr><th>Person (track)</th><th>Outcome</th><th>Fake score</th><th>Band</th>'
            "<th>Frames scored / seen</th></tr>")
        for t in v.tracks:
            add(f'<tr><td class="num">{t.track}</td><td>{e(verdict_words(t.label).lower())}</td>'
                f'<td class="num">{_fmt_score(t.fake_score)}</td>'
                f'<td>{e(t.band or "—")}</td><td class="num">{t.frames_scored} / {t.frames_seen}</td></tr>')
        add("</table>")
        if len(v.tracks) > 1:
            add("<ul>" + "".join(f"<li>{e(t.explanation)}</li>" for t in v.tracks) + "</ul>")
    else:
        add("<p>No person was found.</p>")

    # timeline
    add("<h2>2. Score timeline</h2>")
    if timeline:
        add(f'<p><img src="{data_uri_png(timeline)}" width="620" alt="fake score per person over time"></p>')
    n_frames = len(result.frames)
    n_face = sum(1 for f in result.frames if f.faces)
    spans = flagged_spans(result)
    span_text = ", ".join(f"{a}–{b}" for a, b in spans[:12]) + (f" and {len(spans) - 12} more" if len(spans) > 12 else "")
    add(f"<p class=\"small\">{n_frames} frames analysed of {src.frames} (stride "
        f"{e(result.settings.get('stride', 1))}); faces on {n_face}; shaded stripes are the score bands, the "
        "dashed red line the decision threshold; grey ticks at the bottom mark frames without a face.</p>")
    add(f"<p>Flagged spans (consecutive analysed frames at or above the threshold): "
        f"{e(span_text) if spans else 'none'}.</p>")

    # keyframes
    add("<h2>3. Keyframes</h2>")
    if keyframes:
        add('<p class="small">Each person\'s most suspicious frames and the first and last frame of each flagged '
            "span, with the manipulation mask (coloured where the model marks pixels as manipulated), face "
            "boxes, track ids and scores.</p>")
        for kf, png in keyframes:
            who = f"Person {kf.track}" if kf.track >= 0 else "No person"
            sc = "not scored" if kf.score is None else f"fake score {kf.score:.3f}"
            # heading directly followed by the image's paragraph (the reason rides below the image in
            # the same paragraph), so the PDF can keep the two on one page
            why = f'<br><span class="small">Shown as {e(kf.why)}.</span>' if kf.why else ""
            add(f'<h3 class="kf">{e(who)} — frame {kf.index} at {timecode(kf.pts_s)} — {e(sc)}</h3>')
            add(f'<p><img src="{data_uri_png(png)}" width="{_keyframe_width(png)}" alt="frame {kf.index}">{why}</p>')
    else:
        add("<p>No frame was analysed.</p>")

    # evidence
    add("<h2>4. Evidence</h2>")
    verified = {True: "yes — matches", False: "NO — the file has changed", None: "not re-checked"}[
        meta.evidence_verified]
    add(_kv_table([
        ("File name", name),
        ("Path at analysis", src.path),
        ("Size", f"{src.size_bytes:,} bytes" if src.size_bytes else "—"),
        ("SHA-256", src.sha256 or "not computed"),
        ("SHA-256 re-verified for this report", verified),
        ("Container", src.container or "—"),
        ("Video codec", src.codec or "—"),
        ("Resolution", f"{src.width} x {src.height} (rotation {src.rotation}°)"),
        ("Frame rate", f"{src.fps:.3f} fps"),
        ("Frames", src.frames),
        ("Duration", f"{src.duration_s:.3f} s ({timecode(src.duration_s)})"),
    ], mono_keys=("SHA-256",)))
    add('<p class="small">The evidence was opened read-only and never modified. Anyone can check the file '
        "with <span class=\"mono\">sha256sum</span>.</p>")

    # software, model, settings
    add("<h2>5. Method: software, model, settings</h2>")
    add("<h3>Application and runtime</h3>")
    add(_kv_table(_flatten(result.app)))
    add("<h3>Model</h3>")
    add(_kv_table([
        ("Name", model.name),
        ("Version", model.version or "—"),
        ("SHA-256", model.sha256 or "—"),
        ("Trained", "yes" if model.trained else "NO (placeholder; scores mean nothing)"),
        ("Decision threshold", f"{model.threshold:.3f}"),
        ("Real below", f"{model.real_below:.3f}"),
        ("Sustained span level", f"{span_level(model):.3f} ({SPAN_LEVEL_NAMES.get(model.span_level, model.span_level)})"),
        ("Notes", model.notes or "—"),
    ], mono_keys=("SHA-256",)))
    bands = model.bands or DEFAULT_BANDS
    add(f'{_TABLE}<tr><th width="22%">Score band</th><th width="16%">Range</th><th>Meaning</th></tr>')
    for b in bands:
        add(f"<tr><td>{e(b.name)}</td><td class=\"num\">{b.lo:.2f} – {min(b.hi, 1.0):.2f}</td><td>{e(b.meaning)}</td></tr>")
    add("</table>")
    add("<h3>Model card</h3>")
    if summary_md:
        add(f'<div class="card">{render_markdown(summary_md)}</div>')
    else:
        add("<p>No model card was found for this model.</p>")
    if limits_md:
        add("<h3>Known limits (from the model card)</h3>")
        add(f'<div class="card">{render_markdown(limits_md)}</div>')
    card_file = by_name.get("model_card.md")
    if card_file is not None:
        add(f'<p class="small">The full model card is attached as model_card.md ({card_file.size:,} bytes, '
            f'SHA-256 <span class="mono">{e(card_file.sha256)}</span>).</p>')
    add("<h3>Backend</h3>")
    add(_kv_table(_flatten(result.backend)))
    add("<h3>Analysis settings</h3>")
    add(_kv_table(_flatten(result.settings)))

    # exported files
    if meta.files:
        add("<h2>6. Files exported with this report</h2>")
        add('<p class="small">Everything the printed report leaves out is in these files; SHA256SUMS in the '
            "same folder lists every file, this report included.</p>")
        add(f'{_TABLE}<tr><th width="30%">File</th><th>What it holds</th><th width="14%">Bytes</th></tr>')
        frame_pngs = [f for f in meta.files if f.name.startswith("frames/")]
        for f in meta.files:
            if f.name.startswith("frames/"):
                continue
            role = FILE_ROLES.get(f.name, "")
            if f.name == "frames.csv":
                role = f"{role} ({len(frame_pngs)} frames)"
            add(f'<tr><td>{e(f.name)}</td><td>{e(role)}</td><td class="num">{f.size:,}</td></tr>'
                f'<tr><td colspan="3" class="mono">SHA-256 {e(f.sha256)}</td></tr>')
        add("</table>")
        if frame_pngs and "frames.csv" not in by_name:  # a caller that listed the PNGs themselves
            add("<p>" + ", ".join(e(f.name) for f in frame_pngs) + "</p>")

    # appendix: one line, not one row per frame
    add("<h2>Appendix A. Per-frame results</h2>")
    rows = sum(max(1, len(fr.faces)) for fr in result.frames)
    csv_file = by_name.get("analysis.csv")
    where = (f'analysis.csv (SHA-256 <span class="mono">{e(csv_file.sha256)}</span>)' if csv_file
             else "analysis.csv of this report's package")
    add(f"<p>{n_frames} analysed frames, {rows} rows (frame, time, track, box, state, fake score, error): "
        f"in {where} and in analysis.json. They are not printed here.</p>")

    from ...resources import resource_path

    tmpl_path = resource_path("report", "report.html")
    try:
        template = string.Template(tmpl_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"report template missing: {tmpl_path}") from exc
    body = "\n".join(parts)
    return template.substitute(
        title=e(f"DeepYN forensic report: {name}"),
        generator=e(f"DeepYN Viewer {result.app.get('version', '')}"),
        body=_wrap_points(body) if print_layout else body,
    )


def build_report_html(
    result: AnalysisResult,
    video_path: str | os.PathLike[str],
    meta: ReportMeta,
    style: AnnotateStyle | None = None,
    per_track: int = DEFAULT_TOP_FRAMES,
    print_layout: bool = False,
) -> str:
    """Decode the keyframes, draw the timeline and render the HTML."""
    from .plot import timeline_png

    kfs = collect_keyframes(result, per_track=per_track)
    images = render_keyframes(result, video_path, kfs, style) if kfs else []
    return report_html(result, meta, timeline_png(result), images, print_layout=print_layout)


# ---------------------------------------------------------------------------------------- orchestration


@dataclass
class ReportFiles:
    """Everything :func:`write_report` wrote, by kind."""

    folder: Path
    html: Path | None = None
    pdf: Path | None = None
    model_card: Path | None = None
    frames_csv: Path | None = None
    json: Path | None = None
    csv: Path | None = None
    verdict_csv: Path | None = None
    frames: list[Path] = field(default_factory=list)
    video: Path | None = None
    frame_hashes: Path | None = None
    manifest: Path | None = None
    problems: list[str] = field(default_factory=list)


def _exported(path: Path, folder: Path) -> ExportedFile:
    """Name (relative to the report folder), SHA-256 and size of one written file."""
    from ..evidence import sha256_file

    return ExportedFile(path.relative_to(folder).as_posix(), sha256_file(path), path.stat().st_size)


def _frames_csv(result: AnalysisResult, paths: Sequence[Path], folder: Path) -> bytes:
    """frames.csv: one row per exported frame PNG (frame, time, file, bytes, SHA-256): the per-frame
    hashes the printed report summarises in one line."""
    import csv
    import io
    import re as _re

    from ..evidence import sha256_file

    pts = {fr.index: fr.pts_s for fr in result.frames}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["frame", "pts_s", "timecode", "file", "bytes", "sha256"])
    for p in paths:
        m = _re.search(r"frame_(\d+)_", p.name)
        idx = int(m.group(1)) if m else -1
        t = pts.get(idx)
        w.writerow([idx, "" if t is None else f"{t:.6f}", "" if t is None else timecode(t),
                    p.relative_to(folder).as_posix(), p.stat().st_size, sha256_file(p)])
    return buf.getvalue().encode("utf-8")


def write_report(
    result: AnalysisResult,
    video_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    analyst: str = "",
    notes: str = "",
    frames: str = "key",
    video: bool = False,
    frame_hashes: bool = False,
    pdf_writer: PdfWriter | None = None,
    style: AnnotateStyle | None = None,
    allow_evidence_dir: bool = False,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    generated_utc: str = "",
    top_frames: int = DEFAULT_TOP_FRAMES,
) -> ReportFiles:
    """Write the whole forensic package into ``out_dir``.

    analysis.json + analysis.csv + verdict.csv, model_card.md (when the model has one), annotated PNGs
    under ``frames/`` (``frames``: key = each person's ``top_frames`` most suspicious + flagged spans'
    ends, flagged, all, none or a ``10,20-30`` spec) with frames.csv listing their SHA-256, optionally
    ``annotated.mp4`` and ``frame_hashes.tsv``, then ``report.html`` (which lists the SHA-256 of every
    other file), optionally ``report.pdf`` through ``pdf_writer`` (from a print variant of the same HTML),
    and a ``SHA256SUMS`` manifest. The evidence is re-hashed once up front and must match the result.

    Packaging (why: an interrupted export once left 31 PNGs and analysis files that looked like a
    package): everything is written into a hidden staging folder beside the target,
    ``.<name>.<random>.partial``, and renamed to ``out_dir`` only once ``SHA256SUMS`` is written. On any
    error, cancel or signal the staging folder is deleted, so nothing is left at the target; ``out_dir``
    must be new or empty (a package is never merged into other files).
    """
    import shutil
    import tempfile

    from ..evidence import require_evidence
    from ..output_guard import check_output_dir

    target = check_output_dir(out_dir, evidence=[video_path], allow_evidence_dir=allow_evidence_dir,
                              must_be_empty=True)
    require_evidence(video_path, result.source.sha256)
    parent = target.parent if str(target.parent) else Path(".")
    created: list[Path] = []
    for anc in reversed([parent, *parent.parents]):
        if not anc.exists():
            try:
                anc.mkdir()
            except OSError as exc:
                _remove_dirs(created)
                raise ExportError(f"Cannot create the export folder {anc}: {exc.strerror or exc}.") from exc
            created.append(anc)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        _remove_dirs(created)
        raise ExportError(f"Cannot write to {parent}: {exc.strerror or exc}.") from exc
    try:
        files = _write_package(result, video_path, staging, analyst, notes, frames, video, frame_hashes,
                               pdf_writer, style, on_progress, cancel, generated_utc, top_frames)
        try:
            if target.is_dir():
                target.rmdir()  # empty (checked above); a rename cannot go over a folder on every OS
            os.rename(staging, target)
        except OSError as exc:  # e.g. something appeared at the target meanwhile
            raise ExportError(f"Cannot move the finished package to {target}: {exc.strerror or exc}.") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_dirs(created)
        raise
    return _moved(files, staging, target)


def _remove_dirs(created: list[Path]) -> None:
    """Remove the folders this export created (deepest first) if they are still empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


def _moved(files: ReportFiles, old: Path, new: Path) -> ReportFiles:
    """The same ReportFiles with every path moved from the staging folder to the final one."""
    def mv(p: Path | None) -> Path | None:
        return None if p is None else new / p.relative_to(old)

    out = ReportFiles(new)
    out.html, out.pdf, out.json, out.csv = mv(files.html), mv(files.pdf), mv(files.json), mv(files.csv)
    out.verdict_csv, out.video = mv(files.verdict_csv), mv(files.video)
    out.frame_hashes, out.manifest = mv(files.frame_hashes), mv(files.manifest)
    out.model_card, out.frames_csv = mv(files.model_card), mv(files.frames_csv)
    out.frames = [new / p.relative_to(old) for p in files.frames]
    out.problems = [s.replace(str(old), str(new)) for s in files.problems]
    return out


def _write_package(
    result: AnalysisResult,
    video_path: str | os.PathLike[str],
    folder: Path,
    analyst: str,
    notes: str,
    frames: str,
    video: bool,
    frame_hashes: bool,
    pdf_writer: PdfWriter | None,
    style: AnnotateStyle | None,
    on_progress: ProgressFn | None,
    cancel: threading.Event | None,
    generated_utc: str,
    top_frames: int,
) -> ReportFiles:
    """The package's files into ``folder`` (the staging folder); SHA256SUMS last."""
    from ..evidence import write_frame_hashes
    from .data import write_csv, write_json, write_verdict_csv
    from .frames import export_frames, select_frames
    from .plot import timeline_png
    from .video import export_annotated_video

    def step(what: str, done: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("report export cancelled")
        if on_progress:
            on_progress(what, done, total)

    style = style or AnnotateStyle.for_result(result)
    files = ReportFiles(folder)
    step("data", 0, 1)
    files.json = write_json(result, folder / "analysis.json")
    files.csv = write_csv(result, folder / "analysis.csv")
    files.verdict_csv = write_verdict_csv(result, folder / "verdict.csv")
    card = model_card_text(result)
    card_file = files.model_card = (
        write_bytes_atomic(folder / "model_card.md", card.encode("utf-8")) if card else None)
    wanted = select_frames(result, frames, top_frames)
    frames_csv = None
    if wanted:
        (folder / "frames").mkdir(exist_ok=True)
        files.frames = export_frames(
            result, video_path, wanted, folder / "frames", style, allow_evidence_dir=True, verify=False,
            on_progress=lambda d, t: step("frames", d, t), cancel=cancel,
        )
        frames_csv = files.frames_csv = write_bytes_atomic(
            folder / "frames.csv", _frames_csv(result, files.frames, folder))
    if video:
        ve = export_annotated_video(
            result, video_path, folder / "annotated.mp4", style, allow_evidence_dir=True, verify=False,
            on_progress=lambda d, t: step("video", d, t), cancel=cancel,
        )
        files.video = ve.path
        files.problems += list(ve.problems)
    if frame_hashes:
        files.frame_hashes = write_frame_hashes(
            video_path, folder / "frame_hashes.tsv", expected_sha256=result.source.sha256, verify=False,
            allow_evidence_dir=True, on_progress=lambda d, t: step("frame hashes", d, t), cancel=cancel,
        )
    step("report", 0, 1)
    exported = [p for p in [files.json, files.csv, files.verdict_csv, card_file, frames_csv, *files.frames,
                            files.video, files.frame_hashes] if p]
    meta = ReportMeta(
        analyst=analyst, notes=notes, generated_utc=generated_utc or now_utc(), evidence_verified=True,
        files=[_exported(p, folder) for p in exported],
    )
    kfs = collect_keyframes(result, per_track=top_frames)
    images = render_keyframes(result, video_path, kfs, style) if kfs else []
    timeline = timeline_png(result)
    html_text = report_html(result, meta, timeline, images, card_text=card)
    files.html = write_bytes_atomic(folder / REPORT_HTML, html_text.encode("utf-8"))
    if pdf_writer is not None:
        step("pdf", 0, 1)
        pdf_writer(report_html(result, meta, timeline, images, card_text=card, print_layout=True),
                   folder / REPORT_PDF)
        files.pdf = folder / REPORT_PDF
    listed = [*exported, files.html] + ([files.pdf] if files.pdf else [])
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in (_exported(p, folder) for p in listed))
    files.manifest = write_bytes_atomic(folder / MANIFEST, sums.encode("utf-8"))
    step("done", 1, 1)
    return files
