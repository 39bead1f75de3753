"""Who goes where in a recording: parties, the left-channel rule and the output plans.

A *party* is what a listener hears as one voice: a SIPREC participant with the streams
it sends, or a stream nobody is named as sending (an unlabelled or mixed stream). The
administrator's ``recording.layout`` decides how parties become files and channels
(REQUIREMENTS X1, X2, U3):

* ``stereo``: one file, the party chosen by ``recording.left_channel`` on the left and
  everyone else on the right; a single party gives a mono file.
* ``mono``: one file, one channel, every party mixed.
* ``conference``: one file, internal parties (agents) left, external parties right; when
  one side would be empty it falls back to ``stereo``.
* ``separate``: one mono file per party.

The left-channel rule: ``internal`` (the first internal party, else the caller),
``caller`` (the party the metadata lists first: SRCs list the calling party first), or
``aor:<glob>`` (the first party whose AOR matches, case-insensitively; no match falls
back to ``internal`` and says so in the plan). A party is internal when its AOR matches
``recording.internal_aors``, when the metadata names it a platform user (BroadWorks user
id), or when its AOR's user part is a short extension (2 to 6 digits).

Pure functions over plain values; :func:`parties_of` reads them off a loaded segment.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from callvault.db.models import Segment

__all__ = [
    "LAYOUTS",
    "ChannelPlan",
    "OutputPlan",
    "Party",
    "is_internal",
    "left_party",
    "parties_of",
    "phone_number",
    "plan_outputs",
]

LAYOUTS = ("stereo", "mono", "conference", "separate")

_EXTENSION = re.compile(r"\d{2,6}")


@dataclass(frozen=True, slots=True)
class Party:
    key: str
    aor: str | None
    name: str | None
    internal: bool
    order: int
    stream_ids: tuple[int, ...]
    stream_labels: tuple[str, ...] = ()  # SDP labels (or m-line numbers) of stream_ids

    @property
    def label(self) -> str:
        return self.aor or self.name or self.key


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One output channel: the parties (and so the streams) mixed into it."""

    name: str  # "left", "right" or "mono"
    parties: tuple[Party, ...]

    @property
    def stream_ids(self) -> tuple[int, ...]:
        return tuple(s for party in self.parties for s in party.stream_ids)

    def as_json(self) -> dict[str, object]:
        return {
            "channel": self.name,
            "participants": [p.label for p in self.parties],
            "names": [p.name for p in self.parties],
            "internal": [p.internal for p in self.parties],
            "labels": [label for p in self.parties for label in p.stream_labels],
            "stream_ids": list(self.stream_ids),
        }


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """One file: its channels, and for ``separate`` whose file it is."""

    channels: tuple[ChannelPlan, ...]
    participant_key: str | None = None
    rule_note: str | None = None  # e.g. "aor:... matched nobody; used internal"


def user_part(aor: str | None) -> str | None:
    """``sip:+4822123@host;user=phone`` -> ``+4822123``; ``tel:+1555`` -> ``+1555``."""
    if not aor:
        return None
    text = aor.strip().strip("<>")
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips", "tel"):
        rest = text
    rest = rest.split(";", 1)[0]
    return rest.split("@", 1)[0] or None


def is_internal(aor: str | None, platform_user: str | None, internal_aors: Sequence[str]) -> bool:
    if aor and any(fnmatch.fnmatchcase(aor.lower(), g.lower()) for g in internal_aors):
        return True
    if platform_user:
        return True
    user = user_part(aor)
    return bool(user and _EXTENSION.fullmatch(user))


def parties_of(segment: Segment, internal_aors: Sequence[str] = ()) -> list[Party]:
    """The segment's parties in metadata order, then sender-less streams by m-line."""
    by_participant: dict[int, list[int]] = {}
    labels = {s.id: s.label or str(s.media_index) for s in segment.streams}
    loose: list[Party] = []
    for stream in sorted(segment.streams, key=lambda s: s.media_index):
        senders = sorted(
            (link.participant for link in stream.participant_links if link.role == "send"),
            key=lambda p: p.id,
        )
        if len(senders) == 1:
            by_participant.setdefault(senders[0].id, []).append(stream.id)
            continue
        # No sender named, or several (a mixed stream): a voice of its own.
        names = [p.aor or p.name for p in senders if p.aor or p.name]
        loose.append(
            Party(
                key=f"stream:{stream.label or stream.media_index}",
                aor=None,
                name=" + ".join(n for n in names if n) or None,
                internal=False,
                order=10_000 + stream.media_index,
                stream_ids=(stream.id,),
                stream_labels=(labels[stream.id],),
            )
        )
    parties = [
        Party(
            key=p.participant_key,
            aor=p.aor,
            name=p.name,
            internal=is_internal(p.aor, p.user_id, internal_aors),
            order=n,
            stream_ids=tuple(by_participant[p.id]),
            stream_labels=tuple(labels[i] for i in by_participant[p.id]),
        )
        for n, p in enumerate(sorted(segment.participants, key=lambda p: p.id))
        if p.id in by_participant
    ]
    return parties + loose


def left_party(parties: Sequence[Party], rule: str) -> tuple[Party, str | None]:
    """The party for the left channel under ``rule``, and a note when the rule fell back."""
    if not parties:
        raise ValueError("no parties")
    ordered = sorted(parties, key=lambda p: p.order)
    if rule == "caller":
        return ordered[0], None
    note = None
    if rule.startswith("aor:"):
        pattern = rule[4:].lower()
        for party in ordered:
            if party.aor and fnmatch.fnmatchcase(party.aor.lower(), pattern):
                return party, None
        note = f"{rule} matched no party; the internal rule chose the left channel"
    internal = [p for p in ordered if p.internal]
    return (internal[0] if internal else ordered[0]), note


def plan_outputs(parties: Sequence[Party], layout: str, rule: str) -> list[OutputPlan]:
    """The files (and their channels) a segment with ``parties`` becomes."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    ordered = tuple(sorted(parties, key=lambda p: p.order))
    if not ordered:
        return []
    if layout == "separate":
        return [OutputPlan((ChannelPlan("mono", (p,)),), participant_key=p.key) for p in ordered]
    if layout == "mono" or len(ordered) == 1:
        return [OutputPlan((ChannelPlan("mono", ordered),))]
    if layout == "conference":
        inside = tuple(p for p in ordered if p.internal)
        outside = tuple(p for p in ordered if not p.internal)
        if inside and outside:
            return [OutputPlan((ChannelPlan("left", inside), ChannelPlan("right", outside)))]
    left, note = left_party(ordered, rule)
    rest = tuple(p for p in ordered if p is not left)
    return [OutputPlan((ChannelPlan("left", (left,)), ChannelPlan("right", rest)), None, note)]


def phone_number(parties: Sequence[Party], left: Party | None = None) -> str | None:
    """The number a file is named after: the first external party's, else the other side's."""
    ordered = sorted(parties, key=lambda p: p.order)
    for party in ordered:
        if not party.internal and (number := user_part(party.aor)):
            return number
    for party in ordered:
        if party is not left and (number := user_part(party.aor)):
            return number
    return None
