"""Video input: open a suspect clip read-only, describe it, and hand out frames by exact index.

Forensic results name frames by index and timestamp, so "frame 412" must be the same picture whether
it was reached by playing from the start or by jumping there. Container frame counts and seeks cannot
be trusted for that (counts lie, OpenCV's ``CAP_PROP_POS_FRAMES`` drifts on B-frame and VFR files), so
:class:`VideoSource` builds its own frame table once by *demuxing* the packets (cheap: no decoding):
the sorted packet presentation timestamps are the frames in presentation order. ``frame_at`` then seeks
to a keyframe at or before the target and decodes forward to the frame whose PTS is the target's.

PyAV is the decoder (it bundles FFmpeg and exposes PTS and the display matrix). Nothing here writes to
the input: the file is opened through FFmpeg's read-only ``file:`` protocol.

Size (~800 lines): one class, :class:`VideoSource`, whose frame table, decoder state, seek
logic and damage accounting share invariants (index <-> PTS, what was recorded as missing); split
across modules they would have to be kept in step by hand. :class:`FrameReader` is its small cache.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np

from deepyn_gui.core.errors import InputError
from deepyn_gui.core.input_limits import stat_regular_file

__all__ = ["DEFAULT_FPS", "VideoFrame", "VideoInfo", "VideoSource", "open_video"]

#: Frame rate assumed when neither the container nor the timestamps give one (``fps_guessed`` is set).
DEFAULT_FPS = 25.0
_MAX_ERRORS = 50  # decode_errors stops growing here so a badly damaged file cannot flood a report
_MAX_SANE_FPS = 1000.0  # container rates above this are timebase artefacts, not frame rates


@dataclass(frozen=True)
class VideoInfo:
    """What the file is, as measured (not as the container claims where the two differ).

    ``frames`` is counted from the demuxed packets. ``width``/``height`` are as displayed, i.e. after
    ``rotation`` (clockwise degrees the picture is turned for display, like the classic ``rotate`` tag).
    ``start_s`` is the first frame's presentation time in the stream; frame ``pts_s`` are relative to it.
    ``exact_seek`` is False when the file has no usable timestamps: indexes are then decode order and
    ``frame_at`` decodes from the start.
    """

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    rotation: int
    codec: str
    container: str
    size_bytes: int
    pix_fmt: str
    fps_guessed: bool = False
    start_s: float = 0.0
    exact_seek: bool = True
    video_streams: int = 1  # video streams in the file; ``stream`` is the one these facts describe
    stream: int = 0
    stream_labels: tuple[str, ...] = ()  # one line per video stream (describe_stream), to choose among them


def describe_stream(v: dict[str, int | float | str]) -> str:
    """One video stream in words, as the warnings and the viewer's stream chooser name it."""
    return f"stream {v['index']}: {v['width']}x{v['height']} {v['codec']}, {v['frames'] or '?'} frames"


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded picture: presentation-order ``index``, time since the first frame, RGB pixels.

    ``index`` counts the frames present in the file (as FFmpeg's frame number does): if a damaged file
    lost packets, later indexes shift while ``pts_s`` keeps the file's own timestamp.
    ``rgb`` is HxWx3 uint8, C-contiguous, rotation already applied; each call returns a fresh array.
    """

    index: int
    pts_s: float
    rgb: np.ndarray


@dataclass
class _FrameTable:
    """Per-frame facts from one demux pass, in presentation order."""

    pts: list[int]  # sorted presentation timestamps (stream time base); empty when not exact
    by_pts: dict[int, int]
    keys: list[int]  # presentation indexes of keyframes, sorted
    key_dts: dict[int, int | None]
    count: int
    last_duration: int | None
    exact: bool


class VideoSource:
    """A video file opened read-only for sequential and exact random-access decoding.

    Not thread-safe: it owns one demuxer/decoder; each thread opens its own source. ``frames()`` and
    ``frame_at()`` may be interleaved freely (the decoder is repositioned as needed). Problems met while
    decoding (damaged or truncated data) do not raise mid-iteration: iteration ends with the frames that
    could be decoded and a sentence per problem is appended to :attr:`decode_errors`.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 2, stream: int | None = None) -> None:
        """``stream``: which video stream (0-based among the video streams); default the one with the
        most frames (then the largest picture), not simply the first: a decoy 64x64 first stream once
        hid the real one. :attr:`video_streams` lists them all."""
        self.path = Path(path)
        self.decode_errors: list[str] = []
        self._threads = max(1, int(threads))
        self._container: av.container.InputContainer | None = None
        self._gen: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._last = -1  # index of the last frame taken from _gen
        self._current: tuple[int, av.VideoFrame] | None = None
        self._missing: set[int] = set()
        self._closed = False
        self._discarded = 0
        #: packets the decoder refused (damaged data); decoding went on past each of them
        self.damaged_packets = 0
        self._open_options: dict[str, str] = {}
        self._stream_request = stream
        self._timing_fps: float | None = None  # set when the file's timestamps cannot be trusted
        self.video_streams: list[dict[str, int | float | str]] = []
        self.stream_choice = 0

        size = _check_file(self.path)
        container, vstream = self._open()
        try:
            self._time_base = vstream.time_base or Fraction(1, 1_000_000)
            declared = int(vstream.frames or 0)
            rate = vstream.average_rate or vstream.guessed_rate
            codec_rate = vstream.codec_context.framerate if vstream.codec_context else None
            codec = vstream.codec_context.name if vstream.codec_context else "unknown"
            fmt = container.format.name
            meta_rotate = vstream.metadata.get("rotate")
            self._table = self._scan(container, vstream)
        finally:
            container.close()
        broken = self._timing_broken(fmt)
        if broken:
            self._repair_timing(broken, rate, codec_rate)
            rate = None if self._timing_fps is None else Fraction(self._timing_fps).limit_denominator(1001)
        if self._table.count == 0:
            raise InputError(f"'{self.path.name}' has a video stream but no frames in it.")
        if declared and declared != self._table.count + self._discarded:
            self._record(
                f"The container declares {declared} frames but {self._table.count} could be read "
                "(file truncated or damaged)."
            )

        first = self._first_frame()
        ccw = int(first.rotation or 0)
        if ccw == 0 and meta_rotate:
            try:
                ccw = -int(float(meta_rotate))
            except ValueError:
                ccw = 0
        rotation = (round(-ccw / 90.0) * 90) % 360
        self._rot_k = (-rotation // 90) % 4  # np.rot90 turns counter-clockwise
        w, h = int(first.width), int(first.height)
        if rotation in (90, 270):
            w, h = h, w

        fps, guessed = self._pick_fps(rate)
        if self._timing_fps is not None and self._timing_fps != fps:
            self._timing_fps = fps
        tb = float(self._time_base)
        t = self._table
        if self._timing_fps is not None:  # repaired: the file's own times are not to be trusted
            self._start_pts: int = t.pts[0] if t.exact else 0
            duration = t.count / fps
            start_s = 0.0
        elif t.exact:
            self._start_pts = t.pts[0]
            last_dur = t.last_duration * tb if t.last_duration else 1.0 / fps
            duration = (t.pts[-1] - t.pts[0]) * tb + last_dur
            start_s = t.pts[0] * tb
        else:
            self._start_pts = first.pts if first.pts is not None else 0
            duration = t.count / fps
            start_s = self._start_pts * tb
        self.info = VideoInfo(
            path=self.path,
            frames=t.count,
            fps=fps,
            width=w,
            height=h,
            duration_s=float(duration),
            rotation=rotation,
            codec=codec,
            container=fmt,
            size_bytes=size,
            pix_fmt=first.format.name,
            fps_guessed=guessed,
            start_s=float(start_s),
            exact_seek=t.exact,
            video_streams=max(1, len(self.video_streams)),
            stream=self.stream_choice,
            stream_labels=tuple(  # the shown stream's frames are counted even where the container has no count
                describe_stream({**v, "frames": v["frames"] or t.count} if i == self.stream_choice else v)
                for i, v in enumerate(self.video_streams)
            ),
        )

    # ------------------------------------------------------------------ public API

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[VideoFrame]:
        """Yield frames ``start, start+step, ...`` below ``stop`` in presentation order.

        Frames between the requested ones are decoded but not converted to RGB (decoding is sequential
        by nature; conversion is the part worth skipping). Frames the decoder could not produce are
        skipped and reported in :attr:`decode_errors`; a hard decode error ends the iteration.
        """
        if start < 0 or step < 1:
            raise ValueError(f"frames() needs start >= 0 and step >= 1, got start={start}, step={step}")
        n = self.info.frames
        stop = n if stop is None else max(0, min(int(stop), n))
        target = int(start)
        while target < stop:
            item = self._advance_to(target)
            if item is None:
                lost = list(range(target, stop, step))
                self._missing.update(lost)
                self._record(
                    f"Decoding stopped at frame {target} of {n}; the {len(lost)} frame(s) after it that were "
                    "asked for could not be read (file truncated or damaged)."
                )
                return
            idx, frame = item
            if idx > target:
                skipped = list(range(target, min(idx, stop), step))
                if skipped:
                    self._missing.update(skipped)
                    self._record(_span_message(skipped))
                target += step * len(skipped)
                if target >= stop or target != idx:
                    continue
            yield self._convert(idx, frame)
            target += step

    def frame_at(self, index: int) -> VideoFrame:
        """Return exactly frame ``index`` (presentation order), the same pixels sequential decoding gives.

        Raises IndexError outside ``0 <= index < info.frames`` and :class:`InputError` when that frame
        cannot be decoded (damaged data).
        """
        n = self.info.frames
        if not 0 <= index < n:
            raise IndexError(f"frame index {index} out of range (video has {n} frames)")
        if index not in self._missing:
            item = self._advance_to(index)
            if item is not None and item[0] == index:
                return self._convert(*item)
            if self._table.exact and self._reposition(index, extra_gop=True):
                item = self._advance_to(index, reposition=False)
                if item is not None and item[0] == index:
                    return self._convert(*item)
            self._missing.add(index)
            self._record(f"Frame {index} could not be decoded.")
        raise InputError(f"Frame {index} of '{self.path.name}' could not be decoded (damaged data).")

    @property
    def missing_frames(self) -> list[int]:
        """Frames (presentation indexes) that were asked for and could not be decoded, sorted.

        With :attr:`decode_errors` this is the accounting that lets a result be called complete only
        when every frame the container holds was decoded or is named here.
        """
        return sorted(self._missing)

    def timestamps(self) -> list[float]:
        """Presentation time (s, relative to frame 0) of every frame, without decoding anything.

        Exact from the packet table; estimated as ``index / fps`` when the file has no usable timestamps.
        """
        if self._timing_fps is not None:
            return [i / self._timing_fps for i in range(self.info.frames)]
        if self._table.exact:
            p0 = self._table.pts[0]
            return [float((p - p0) * self._time_base) for p in self._table.pts]
        return [i / self.info.fps for i in range(self.info.frames)]

    def close(self) -> None:
        """Release the demuxer and decoder (idempotent)."""
        self._closed = True
        self._gen = None
        self._current = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoSource:  # noqa: PYI034 - typing.Self needs 3.11
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSource({str(self.path)!r})"

    # ------------------------------------------------------------------ opening and indexing

    def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        """Open the file through FFmpeg's ``file:`` protocol so names are never read as URLs/protocols."""
        url = "file:" + str(self.path.resolve())
        try:
            container = av.open(url, mode="r", options=dict(self._open_options))
        except av.error.PermissionError as exc:
            raise InputError(f"'{self.path.name}' cannot be read (permission denied).") from exc
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            raise InputError(
                f"'{self.path.name}' is not a video file that can be read (unknown format, or the file "
                "is damaged or incomplete)."
            ) from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"'{self.path.name}' cannot be opened as a video: {_reason(exc)}.") from exc
        fmt = container.format.name or ""
        if fmt.endswith("_pipe") or fmt == "image2":  # png_pipe, jpeg_pipe, ...: one picture, not a clip
            container.close()
            raise InputError(
                f"'{self.path.name}' is a still image ({fmt.removesuffix('_pipe')}), not a video; "
                "it is not analysed as a one-frame clip."
            )
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            container.close()
            what = f"only {', '.join(kinds)}" if kinds else "no streams"
            raise InputError(f"'{self.path.name}' has no video stream ({what}).")
        streams = list(container.streams.video)
        if not self.video_streams:
            self.video_streams = [
                {"index": i, "width": int(s.codec_context.width if s.codec_context else 0),
                 "height": int(s.codec_context.height if s.codec_context else 0), "frames": int(s.frames or 0),
                 "codec": s.codec_context.name if s.codec_context else "unknown"}
                for i, s in enumerate(streams)
            ]
            self.stream_choice = self._choose_stream(streams)
        stream = streams[self.stream_choice]
        stream.thread_type = "AUTO"
        stream.thread_count = self._threads
        return container, stream

    def _choose_stream(self, streams: list[av.video.stream.VideoStream]) -> int:
        """The requested video stream, else the one with the most frames, then the largest picture;
        several streams are always said aloud (a warning naming them and ``--stream``)."""
        n = len(streams)
        req = self._stream_request
        if req is not None:
            if not 0 <= req < n:
                raise InputError(
                    f"'{self.path.name}' has {n} video stream(s); --stream must be 0 to {n - 1}, not {req}."
                )
            choice = req
        else:
            def size(i: int) -> tuple[int, int]:
                v = self.video_streams[i]
                return int(v["frames"]), int(v["width"]) * int(v["height"])

            choice = max(range(n), key=lambda i: (size(i), -i))
        if n > 1:
            desc = "; ".join(describe_stream(v) for v in self.video_streams)
            how = "as asked" if req is not None else "the one with the most frames / largest picture"
            self._record(
                f"The file holds {n} video streams ({desc}); stream {choice} was analysed ({how}); "
                "choose another with --stream N (or Analysis > Video stream in the viewer)."
            )
        return choice

    def _timing_broken(self, fmt: str) -> str:
        """Why the container's timing cannot be trusted ('' when it can): timescale 0, or every
        timestamp repeated (zero stts deltas). FFmpeg then silently drops frames via the edit list."""
        if "mp4" not in fmt and "mov" not in fmt:
            return ""
        if self._time_base == 1:
            return "the video track's timescale is 0"
        if not self._table.exact and self._table.count > 1:
            return "the frame timestamps repeat (zero frame durations)"
        return ""

    def _repair_timing(self, why: str, rate: Fraction | None, codec_rate: Fraction | None) -> None:
        """Re-read the file ignoring its edit list (which, with broken times, hides frames), number the
        frames in decoding order and time them from a frame rate that can be trusted."""
        before = self._table.count
        self._open_options = {"ignore_editlist": "1"}
        container, stream = self._open()
        try:
            table = self._scan(container, stream)
        finally:
            container.close()
        if table.count < before:
            self._open_options = {}
            return
        self._table = table
        fps = None
        # the stream's own rate is derived from the broken times when the timescale is 0
        for r in [codec_rate] + ([rate] if self._time_base != 1 else []):
            if r is not None and 1.0 <= float(r) <= _MAX_SANE_FPS:
                fps = float(r)
                break
        self._timing_guessed = fps is None
        self._timing_fps = fps if fps is not None else DEFAULT_FPS
        how = "assumed" if fps is None else "from the codec/stream rate"
        self._record(
            f"The container's timing is broken ({why}); repaired: {table.count} frames read in decoding order "
            f"(not {before}), times computed at {self._timing_fps:g} fps ({how}). Timestamps in this result are "
            "reconstructed, not the file's."
        )

    def _scan(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream
    ) -> _FrameTable:
        """One demux pass over the video packets: timestamps, keyframes, count. No decoding."""
        pts_l: list[int | None] = []
        dts_l: list[int | None] = []
        key_l: list[bool] = []
        dur_l: list[int | None] = []
        self._discarded = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.is_discard:  # edit-list pre-roll: decoded, never shown
                    self._discarded += 1
                    continue
                pts_l.append(packet.pts)
                dts_l.append(packet.dts)
                key_l.append(bool(packet.is_keyframe))
                dur_l.append(packet.duration)
        except av.error.FFmpegError as exc:
            self._record(
                f"Reading stopped after {len(pts_l)} frames: {_reason(exc)} (file truncated or damaged)."
            )
        count = len(pts_l)
        exact = count > 0 and all(p is not None for p in pts_l) and len(set(pts_l)) == count
        if not exact:
            return _FrameTable([], {}, [], {}, count, None, False)
        order = sorted(range(count), key=lambda i: pts_l[i])  # type: ignore[arg-type,return-value]
        pts = [int(pts_l[i]) for i in order]  # type: ignore[arg-type]
        by_pts = {p: i for i, p in enumerate(pts)}
        keys = sorted(by_pts[int(pts_l[i])] for i in range(count) if key_l[i])  # type: ignore[arg-type]
        key_dts = {by_pts[int(pts_l[i])]: dts_l[i] for i in range(count) if key_l[i]}  # type: ignore[arg-type]
        return _FrameTable(pts, by_pts, keys, key_dts, count, dur_l[order[-1]], True)

    def _first_frame(self) -> av.VideoFrame:
        """Decode the first picture (proves the stream decodes; gives rotation, size, pixel format)."""
        try:
            self._restart()
            item = self._next()
        except InputError:
            raise
        except (av.error.FFmpegError, ValueError, NotImplementedError) as exc:
            self.close()
            raise InputError(
                f"The video stream of '{self.path.name}' cannot be decoded: {_reason(exc)}."
            ) from exc
        if item is None:
            self.close()
            why = f" ({self.decode_errors[-1]})" if self.decode_errors else ""
            raise InputError(f"The video stream of '{self.path.name}' could not be decoded{why}.")
        return item[1]

    def _pick_fps(self, rate: Fraction | None) -> tuple[float, bool]:
        if self._timing_fps is not None:
            return self._timing_fps, bool(getattr(self, "_timing_guessed", False))
        if rate is not None and 0 < float(rate) <= _MAX_SANE_FPS:
            return float(rate), False
        t = self._table
        if t.exact and t.count >= 2 and t.pts[-1] > t.pts[0]:
            return (t.count - 1) / ((t.pts[-1] - t.pts[0]) * float(self._time_base)), False
        return DEFAULT_FPS, True

    # ------------------------------------------------------------------ decoding machinery

    def _advance_to(self, target: int, reposition: bool = True) -> tuple[int, av.VideoFrame] | None:
        """Decode up to the first frame with index >= target (== target unless that one is missing)."""
        if self._closed:
            raise ValueError("VideoSource is closed")
        cur = self._current
        if cur is not None and cur[0] == target:
            return cur
        if reposition and not self._can_continue_to(target):
            self._reposition(target)
        while True:
            item = self._next()
            if item is None or item[0] >= target:
                return item

    def _can_continue_to(self, target: int) -> bool:
        """Is decoding forward from where we are no slower than seeking?"""
        if self._gen is None or self._last >= target:
            return False
        if not self._table.exact:
            return True
        keys = self._table.keys
        k = bisect.bisect_right(keys, target) - 1
        return k < 0 or keys[k] <= self._last + 1

    def _next(self) -> tuple[int, av.VideoFrame] | None:
        if self._gen is None:
            return None
        item = next(self._gen, None)
        if item is None:
            self._gen = None
            return None
        self._last = item[0]
        self._current = item
        return item

    def _restart(self, target: int | None = None) -> None:
        """Reopen at the very beginning: the one repositioning that works on every file."""
        if self._container is not None:
            self._container.close()
            self._container = None
        container, stream = self._open()
        self._container = container
        self._gen = self._decode(stream, container.demux(stream), None, self._skip_below(target))
        self._last = -1
        self._current = None

    def _reposition(self, target: int, extra_gop: bool = False) -> bool:
        """Seek so that decoding forward reaches ``target`` with every reference it needs.

        Picks the last keyframe whose presentation index is <= target (one further back when
        ``extra_gop``), seeks to its PTS, then its DTS, and accepts the seek only if the first packet
        is a keyframe at or before it; otherwise reopens at the start. Returns False on a restart.
        """
        t = self._table
        k = bisect.bisect_right(t.keys, target) - 1 - (1 if extra_gop else 0)
        if not t.exact or k < 0:
            self._restart(target)
            return False
        key = t.keys[k]
        if self._container is None:
            self._restart(target)
        assert self._container is not None
        container = self._container
        stream = container.streams.video[self.stream_choice]
        seen: set[int] = set()
        for ts in (t.pts[key], t.key_dts.get(key)):
            if ts is None or ts in seen:
                continue
            seen.add(ts)
            try:
                container.seek(ts, stream=stream, backward=True)
                packets = container.demux(stream)
                first = next((p for p in packets if p.size > 0), None)
            except av.error.FFmpegError:
                continue
            if first is None or not first.is_keyframe or first.pts is None:
                continue
            landed = t.by_pts.get(first.pts)
            if landed is None or landed > key:
                continue
            self._gen = self._decode(stream, packets, first, self._skip_below(target))
            self._last = -1
            self._current = None
            return True
        self._restart(target)
        return False

    def _skip_below(self, target: int | None) -> int | None:
        """PTS below which non-reference pictures need not be decoded on the way to ``target``.

        Frames shown before the target are thrown away after a seek; the ones no other frame refers to
        (most B-frames) can be skipped by the decoder without changing a single pixel of any later frame.
        Reference frames are always decoded, so the decoder stays exact for sequential decoding after.
        """
        t = self._table
        if target is None or not t.exact or not 0 < target < len(t.pts):
            return None
        return t.pts[target]

    def _decode(
        self,
        stream: av.video.stream.VideoStream,
        packets: Iterator[av.Packet[av.video.stream.VideoStream]],
        first: av.Packet[av.video.stream.VideoStream] | None,
        skip_below_pts: int | None = None,
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Frames with their presentation index from a packet iterator; ends at the first hard error.

        With ``skip_below_pts``, non-reference pictures shown before that PTS are not decoded (a seek's
        lead-in); the decoder's per-packet ``skip_frame`` setting is switched back for every other packet.
        """
        table = self._table
        codec = stream.codec_context
        codec.skip_frame = "DEFAULT"  # an abandoned seek on this decoder may have left it skipping
        skipping = False
        counter = 0  # decode-output order: the index only for files without usable timestamps

        def chained() -> Iterator[av.Packet[av.video.stream.VideoStream]]:
            if first is not None:
                yield first
            yield from packets

        it = chained()
        while True:
            last_round = False
            try:
                packet = next(it, None)  # PyAV ends with an empty packet that drains the decoder
            except av.error.FFmpegError as exc:
                self._record(
                    f"Reading stopped near frame {counter}: {_reason(exc)} (file truncated or damaged)."
                )
                frames, last_round = self._drain(stream), True
            else:
                if packet is None:
                    return
                if skip_below_pts is not None:
                    skip = packet.pts is not None and packet.pts < skip_below_pts
                    if skip != skipping:
                        codec.skip_frame = "NONREF" if skip else "DEFAULT"
                        skipping = skip
                if packet.is_corrupt and packet.size > 0:
                    # The demuxer read less than the packet's size (a file cut off mid-frame). Decoding
                    # it gives a half-concealed picture -- or not, depending on how the decoder's frame
                    # threads happen to run (the cause of a once-flaky test) -- so it is never decoded:
                    # the frame is reported as undecodable, the same way on every run.
                    where = (
                        f" at {float(packet.pts * self._time_base):.3f} s" if packet.pts is not None else ""
                    )
                    self._record(f"The data of the frame{where} is incomplete (file truncated or damaged); "
                                 "that frame was not decoded.")
                    self.damaged_packets += 1
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    # Recover past damage: this packet is lost, the decoder goes on with the next one
                    # (FFmpeg resynchronises at the next decodable slice/keyframe). Stopping here once
                    # threw away half of a clip that had 20 kB of zeros in the middle.
                    where = (
                        f" at {float(packet.pts * self._time_base):.3f} s" if packet.pts is not None else ""
                    )
                    self._record(f"Decode error{where}: {_reason(exc)}; skipped to the next packet.")
                    self.damaged_packets += 1
                    continue
            for frame in frames:
                if table.exact:
                    idx = table.by_pts.get(frame.pts) if frame.pts is not None else None
                    if idx is None:
                        self._record(
                            f"A decoded frame has a timestamp ({frame.pts}) not in the file's index."
                        )
                        continue
                else:
                    idx = counter
                counter += 1
                if frame.is_corrupt:
                    self._record(f"Frame {idx} was decoded from damaged data (it may show artefacts).")
                yield idx, frame
            if last_round:
                return

    def _drain(self, stream: av.video.stream.VideoStream) -> list[av.VideoFrame]:
        """Flush the decoder after a demux error so the frames it still holds are not lost."""
        try:
            return list(stream.decode(None))
        except av.error.FFmpegError:
            return []

    def _convert(self, idx: int, frame: av.VideoFrame) -> VideoFrame:
        """Decoded picture -> VideoFrame: rgb24 (handles gray/10/16-bit), rotation, one contiguous copy."""
        rgb: np.ndarray = frame.to_ndarray(format="rgb24")
        if self._rot_k:
            rgb = np.rot90(rgb, self._rot_k)
        rgb = np.ascontiguousarray(rgb)
        return VideoFrame(index=idx, pts_s=self._pts_s(idx, frame), rgb=rgb)

    def _pts_s(self, idx: int, frame: av.VideoFrame) -> float:
        if self._timing_fps is not None:
            return idx / self._timing_fps
        t = self._table
        if t.exact:
            return float((t.pts[idx] - t.pts[0]) * self._time_base)
        if frame.pts is not None:
            return float((frame.pts - self._start_pts) * self._time_base)
        return idx / self.info.fps

    def _record(self, message: str) -> None:
        if message in self.decode_errors:
            return
        if len(self.decode_errors) < _MAX_ERRORS:
            self.decode_errors.append(message)
        elif len(self.decode_errors) == _MAX_ERRORS:
            self.decode_errors.append("Further decoding problems were not recorded.")


class FrameReader:
    """``frame_at`` for a viewer, with cheap stepping backwards.

    A step back from frame n to n-1 is a cold seek for a decoder (from the keyframe before n-1 on), so
    stepping back through a clip would pay a seek per frame. On a step back the reader instead decodes
    the ``span`` frames up to the target in one forward pass and keeps them (at most ``budget_bytes``,
    least recently used out first), so the next steps back are cache hits. Other requests go straight
    to the source. Frames are the exact ``VideoSource`` pixels. Not thread-safe, like the source.
    """

    def __init__(self, source: VideoSource, budget_bytes: int = 256 << 20, max_span: int = 32) -> None:
        from collections import OrderedDict

        self.source = source
        self.budget_bytes = int(budget_bytes)
        self.max_span = max(1, int(max_span))
        self._cache: OrderedDict[int, VideoFrame] = OrderedDict()
        self._bytes = 0
        self._last: int | None = None
        self.hits = 0
        self.span_decodes = 0

    @property
    def info(self) -> VideoInfo:
        return self.source.info

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def frame_at(self, index: int) -> VideoFrame:
        """Exactly frame ``index`` (the same errors as :meth:`VideoSource.frame_at`)."""
        last, self._last = self._last, index
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            self.hits += 1
            return hit
        if last is not None and 0 < last - index <= 2 and 0 <= index < self.source.info.frames:
            frame = self._decode_span_before(index)
            if frame is not None:
                return frame
        # Not cached: a cache growing on every step and seek costs fresh memory (page faults, ~5 ms a
        # 720p frame on this VM) on the very paths that are already fast.
        return self.source.frame_at(index)

    def _decode_span_before(self, index: int) -> VideoFrame | None:
        """Decode the frames up to ``index`` in one forward pass, keep them; None if ``index`` is not among them."""
        per_frame = max(1, self.source.info.width * self.source.info.height * 3)
        span = min(self.max_span, max(1, self.budget_bytes // per_frame // 2))
        start = max(0, index - span + 1)
        self.span_decodes += 1
        found: VideoFrame | None = None
        for frame in self.source.frames(start=start, stop=index + 1):
            self._put(frame)
            if frame.index == index:
                found = frame
        return found

    def _put(self, frame: VideoFrame) -> None:
        if frame.index in self._cache:
            self._cache.move_to_end(frame.index)
            return
        size = int(frame.rgb.nbytes)
        if size > self.budget_bytes:
            return
        frame.rgb.flags.writeable = False  # shared by every later hit: nobody may paint on it
        self._cache[frame.index] = frame
        self._bytes += size
        while self._bytes > self.budget_bytes:
            _, old = self._cache.popitem(last=False)
            self._bytes -= int(old.rgb.nbytes)

    def close(self) -> None:
        self._cache.clear()
        self._bytes = 0
        self.source.close()


def open_video(path: str | os.PathLike[str]) -> VideoSource:
    """Open ``path`` read-only; raises :class:`InputError` with one clear sentence when it is unusable."""
    return VideoSource(path)


def _check_file(path: Path) -> int:
    """Reject what FFmpeg would give confusing errors for (or block on, like a FIFO); return the size."""
    st = stat_regular_file(path, "Video file")
    if st.st_size == 0:
        raise InputError(f"'{path.name}' is empty (0 bytes).")
    if not os.access(path, os.R_OK):
        raise InputError(f"'{path}' cannot be read (permission denied).")
    return int(st.st_size)


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words without errno and C function names ("Invalid data found when processing input")."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".")


def _span_message(indexes: list[int]) -> str:
    if len(indexes) == 1:
        return f"Frame {indexes[0]} could not be decoded and was skipped."
    return f"Frames {indexes[0]}-{indexes[-1]} ({len(indexes)} frames) could not be decoded and were skipped."
