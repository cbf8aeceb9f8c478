"""Playable demo videos: a few short WebM (VP8) files standing in for the originals of some on-site clips.

Every other original of the demo is random bytes of the catalogued size: enough for the integrity check, not
for a reviewer who wants to play a recording in the spot-check page.  This module picks a few clips of a few
on-site events (:func:`pick_video_clips`) and encodes for each a short synthetic body-camera recording
(:func:`encode_clip`) with PyAV (FFmpeg's libvpx): a moving street-like scene with the camera's on-screen
display (date and time, police number, device number, clip id) drawn by a built-in 5x7 digit font, so the
bytes depend on nothing but the clip and the pinned ``av`` wheel.

Chromium plays WebM/VP8 in a ``<video>`` tag (``st.video``); the picked clips' ``file_path`` ends in
``.webm``.  The bytes are deterministic (same clip, same seed, same ``av`` version → same bytes): one encoder
thread, FFmpeg's bitexact flags (no library version strings, no random Matroska segment UID) and fixed
timestamps.  The media platform records the written file's size and SHA-256, so integrity stays clean.
"""

from __future__ import annotations

import io
import zlib
from fractions import Fraction

import numpy as np
import pandas as pd

from etl.demo.common import NULL_T

VIDEO_COUNT = 6  # files in a demo with media
CLIPS_PER_EVENT = 2
WIDTH, HEIGHT, FPS = 320, 240, 10
VIDEO_SUFFIX = ".webm"
VIDEO_MONTH = "2026-10"  # preferred month of the events (the last full month before the evaluation date)

# 5x7 glyphs of the on-screen display ('#' = lit); characters not listed are drawn blank
_GLYPHS = {
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    "-": ("     ", "     ", "     ", " ### ", "     ", "     ", "     "),
    ":": ("     ", "  #  ", "  #  ", "     ", "  #  ", "  #  ", "     "),
    "D": ("#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "),
    "F": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "),
    "J": ("  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "),
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "V": ("#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "Y": ("#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"),
}
_MASKS = {ch: np.array([[c == "#" for c in row] for row in rows], dtype=bool) for ch, rows in _GLYPHS.items()}


def pick_video_clips(
    clips: pd.DataFrame,
    incidents: pd.DataFrame,
    seed: int,
    excluded: set[str],
    count: int = VIDEO_COUNT,
    month: str = VIDEO_MONTH,
) -> list[str]:
    """Clip ids to write as playable videos: ``CLIPS_PER_EVENT`` clips (the earliest) of each of a few on-site
    events, the events from different units where possible, preferably of ``month``.

    Candidates are clips linked to an on-site event, not deleted and not in ``excluded`` (the clips whose
    original the demo alters or loses).  The draw uses its own generator (``[seed, 13]``) so that the rest of
    the demo is unchanged by it."""
    if count <= 0 or clips.empty:
        return []
    onsite = incidents.loc[(incidents["on_site"] == 1) & (incidents["arrived_at"] != NULL_T)]
    units = onsite.set_index("incident_no")["unit_code"]
    arrived = onsite.set_index("incident_no")["arrived_at"]
    alive = (clips["deleted_at"].to_numpy() == NULL_T) & ~clips["clip_id"].isin(excluded).to_numpy()
    cand = clips.loc[
        alive & clips["incident_no"].isin(units.index).to_numpy(), ["clip_id", "incident_no", "started_at"]
    ]
    counts = cand["incident_no"].value_counts()
    eligible = np.sort(counts.index[counts.to_numpy() >= CLIPS_PER_EVENT].to_numpy().astype(str))
    if not len(eligible):
        return []
    months = np.asarray(pd.to_datetime(arrived.reindex(eligible).to_numpy(), unit="s").strftime("%Y-%m"))
    preferred = eligible[months == month]
    pool = preferred if len(preferred) * CLIPS_PER_EVENT >= count else eligible
    rng = np.random.default_rng([seed, 13])
    order = pool[rng.permutation(len(pool))]
    events: list[str] = []
    seen_units: set[str] = set()
    for inc in order:  # first one event per unit, then any
        if len(events) * CLIPS_PER_EVENT >= count:
            break
        if units[inc] not in seen_units:
            events.append(inc)
            seen_units.add(units[inc])
    for inc in order:
        if len(events) * CLIPS_PER_EVENT >= count:
            break
        if inc not in events:
            events.append(inc)
    chosen = cand[cand["incident_no"].isin(events)].sort_values(["incident_no", "started_at", "clip_id"])
    picked = chosen.groupby("incident_no", sort=True).head(CLIPS_PER_EVENT)["clip_id"].tolist()
    return [str(c) for c in picked[:count]]


def video_path(file_path: str) -> str:
    """The catalogued path of a clip written as a video: its name with the ``.webm`` suffix."""
    stem = file_path.rsplit(".", 1)[0] if "." in file_path.rsplit("/", 1)[-1] else file_path
    return stem + VIDEO_SUFFIX


def _draw_text(img: np.ndarray, text: str, x: int, y: int, scale: int = 1) -> None:
    """White 5x7 glyphs with a one-pixel dark outline, in place."""
    for k, ch in enumerate(text):
        mask = _MASKS.get(ch)
        if mask is None:
            continue
        big = mask.repeat(scale, 0).repeat(scale, 1)
        h, w = big.shape
        x0 = x + k * 6 * scale
        if x0 + w + 1 > img.shape[1] or y + h + 1 > img.shape[0]:
            return
        region = img[y - 1 : y + h + 1, x0 - 1 : x0 + w + 1]
        shadow = np.zeros(region.shape[:2], dtype=bool)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                shadow[dy : dy + h, dx : dx + w] |= big
        region[shadow] = (16, 16, 16)
        region[1 : h + 1, 1 : w + 1][big] = (255, 255, 255)


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, int, int, tuple[int, int, int]]]]:
    """A still street-like background (sky, buildings, road) and a few moving blocks (x, y, w, h, colour)."""
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    sky = np.linspace(200, 150, 90).astype(np.uint8)
    img[:90] = np.stack([sky - 40, sky - 10, sky], axis=1)[:, None, :]
    img[90:170] = (120, 120, 115)
    x = 0
    while x < WIDTH:  # buildings
        w = int(rng.integers(30, 70))
        top = int(rng.integers(30, 80))
        shade = int(rng.integers(90, 170))
        img[top:170, x : x + w] = (shade, shade - 10, shade - 25)
        for wy in range(top + 8, 160, 14):  # windows
            for wx in range(x + 5, min(x + w - 6, WIDTH - 6), 12):
                img[wy : wy + 6, wx : wx + 5] = (230, 220, 150) if rng.random() < 0.4 else (60, 70, 90)
        x += w + int(rng.integers(2, 8))
    img[170:] = (70, 70, 72)  # road
    img[202:206, ::24] = (230, 230, 230)
    for k in range(1, 24):
        img[202:206, k * 24 - 12 : k * 24] = (230, 230, 230)
    movers = [
        (
            int(rng.integers(0, WIDTH)),
            int(rng.integers(178, 200)),
            46,
            20,
            tuple(int(v) for v in rng.integers(40, 230, 3)),
        )
        for _ in range(2)
    ]
    movers.append((int(rng.integers(0, WIDTH)), 130, 10, 40, (30, 40, 90)))  # a person
    return img, movers


def encode_clip(clip_id: str, started_at: int, police_no: str | None, device_sn: str, seed: int) -> bytes:
    """A 2–4 s 320x240 WebM/VP8 recording of a synthetic scene with the clip's on-screen display."""
    key = zlib.crc32(f"{seed}:{clip_id}".encode())
    seconds = 2 + key % 3
    rng = np.random.default_rng([seed, key])
    background, movers = _scene(rng)
    buf = io.BytesIO()
    with av_open(buf) as container:
        stream = container.add_stream("libvpx", rate=FPS, options={"threads": "1", "deadline": "good", "cpu-used": "4"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 300_000
        stream.codec_context.thread_count = 1
        stream.codec_context.time_base = Fraction(1, FPS)
        for i in range(seconds * FPS):
            frame = background.copy()
            shake = int(2 * np.sin(i / 3))  # a worn camera moves a little
            frame = np.roll(frame, shake, axis=0)
            for k, (x, y, w, h, colour) in enumerate(movers):
                dx = (x + i * (6 if k < 2 else 2) * (1 if k % 2 == 0 else -1)) % (WIDTH + w) - w
                lo, hi = max(dx, 0), min(dx + w, WIDTH)
                if hi > lo:
                    frame[y : y + h, lo:hi] = colour
            stamp = pd.Timestamp(int(started_at) + i // FPS, unit="s").strftime("%Y-%m-%d %H:%M:%S")
            frame[:22] //= 2
            _draw_text(frame, stamp, 6, 4, 1)
            _draw_text(frame, str(police_no or ""), 6, 13, 1)
            _draw_text(frame, device_sn, WIDTH - 6 * len(device_sn) - 6, 4, 1)
            _draw_text(frame, clip_id, WIDTH - 6 * len(clip_id) - 6, 13, 1)
            if (i // 5) % 2 == 0:  # the blinking recording dot
                frame[HEIGHT - 16 : HEIGHT - 8, 8:16] = (220, 30, 30)
            vf = av_frame(frame)
            vf.pts = i
            vf.time_base = Fraction(1, FPS)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def av_open(buf: io.BytesIO):  # noqa: ANN201 - av.container.OutputContainer
    """A WebM output container without anything that changes from run to run (FFmpeg's bitexact flag)."""
    import av

    return av.open(buf, "w", format="webm", options={"fflags": "+bitexact"})


def av_frame(rgb: np.ndarray):  # noqa: ANN201 - av.VideoFrame
    import av

    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")


def encode_videos(clips: pd.DataFrame, clip_ids: list[str], seed: int) -> dict[str, bytes]:
    """clip id -> the bytes of its video, for ``clip_ids`` (rows of ``clips``: clip_id, started_at, police_no,
    device_sn)."""
    if not clip_ids:
        return {}
    rows = clips.loc[clips["clip_id"].isin(clip_ids), ["clip_id", "started_at", "police_no", "device_sn"]]
    out = {}
    for cid, start, pno, dev in rows.itertuples(index=False, name=None):
        out[cid] = encode_clip(cid, int(start), None if pno is None or pno != pno else str(pno), str(dev), seed)  # noqa: PLR0124
    return out
