"""A model's card (the Markdown beside the model file): finding it, its sections, its weak spots.

Why in core: the report prints the card's limits in full, and the CLI and the viewer print the
card's first limits under every verdict, so a reader who never opens the report still learns what
this model misses (for 2.x: fully generated talking heads). One parser serves all three.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..results import ModelInfo

_LIMITS_HEADING = re.compile(r"limit|caveat|warning|known|bias|out of scope", re.IGNORECASE)
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`*_])")
_SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def card_describes(card: str, model_sha256: str) -> bool:
    """False when the card names model files by SHA-256 and this model is not one of them.

    Why: a card is found by its place beside the model file, so after a model upgrade a result saved
    with the old model would be shown with the new model's card, its figures and limits. A card that
    lists no SHA-256 (a user's own model) is taken as it is.
    """
    listed = set(_SHA256.findall(card.lower()))
    return not listed or not model_sha256 or model_sha256.lower() in listed


def model_card_text(model: ModelInfo) -> str:
    """The model card's Markdown if it can be found (recorded path, else beside the model file) and
    describes this model (:func:`card_describes`), else ''."""
    candidates: list[Path] = []
    if model.card_path:
        candidates.append(Path(model.card_path))
    if model.path:
        from .metadata import card_path_for

        found = card_path_for(model.path)
        if found:
            candidates.append(found)
    for c in candidates:
        try:
            if c.is_file():
                text = c.read_text(encoding="utf-8", errors="replace")
                if card_describes(text, model.sha256):
                    return text
        except OSError:
            continue
    return ""


def card_sections(card: str) -> tuple[str, str]:
    """The model card's summary (the text between the title and the first section) and its limits
    section(s) (headings naming limits, caveats, warnings, bias), both as Markdown."""
    if not card.strip():
        return "", ""
    summary: list[str] = []
    limits: list[str] = []
    where = "summary"
    level_in_limits = 0
    for line in card.splitlines():
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            level = len(m.group(1))
            if level == 1 and where == "summary" and not any(x.strip() for x in summary):
                continue  # the title
            if where == "limits" and level > level_in_limits:
                limits.append(line)  # a sub-section of the limits
                continue
            if _LIMITS_HEADING.search(m.group(2)):
                where, level_in_limits = "limits", level
                continue
            where = "other"
            continue
        if where == "summary":
            summary.append(line)
        elif where == "limits":
            limits.append(line)
    return "\n".join(summary).strip(), "\n".join(limits).strip()


def _plain(markdown: str) -> str:
    """Inline Markdown as plain text: emphasis and code marks dropped, links reduced to their text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    spans = re.split(r"(`[^`]*`)", text)  # code spans keep their text as it is (file names with _ or *)
    text = "".join(p[1:-1] if p.startswith("`") and p.endswith("`") and len(p) > 1 else re.sub(r"\*\*|\*", "", p)
                   for p in spans)
    return " ".join(text.split())


def weak_spots(card: str, n: int = 2) -> list[str]:
    """The first sentence of each of the first ``n`` bullets of the card's limits section, as plain text.

    Cards are written so that these sentences stand alone (the most important limits first); a card
    without a limits section, or without bullets in it, gives []."""
    _, limits = card_sections(card)
    bullets: list[str] = []
    for line in limits.splitlines():
        m = _BULLET.match(line)
        if m:
            bullets.append(m.group(1))
        elif bullets and line.strip() and line.startswith((" ", "\t")):
            bullets[-1] += " " + line.strip()  # a bullet's continuation line
        if len(bullets) > n:
            break
    out = []
    for b in bullets[:n]:
        text = _plain(b)
        out.append(_SENTENCE_END.split(text, maxsplit=1)[0])
    return [s for s in out if s]
