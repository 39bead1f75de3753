"""SDP session descriptions (RFC 8866, formerly RFC 4566): parse and serialise.

``SessionDescription.parse`` reads an SDP body into plain data and ``str()`` writes it
back with CRLF line ends; a description that follows the RFC's line order survives the
round trip byte for byte. Lines the recorder does not interpret (``i=``, ``b=``,
``t=``, ``k=``, unknown letters) are kept in order, and so are all attributes.

The parser is lenient where Session Recording Clients are sloppy: a missing ``s=``,
``t=`` or ``c=`` line (OpenSIPS sends no ``c=`` at all: ``connection`` is then
``None`` and the SRS uses the signalling source address), trailing blanks, LF line
ends, IPv6 addresses in brackets. It raises ``SdpError`` (status 400) only when the
body cannot be understood: no ``v=0`` first, no ``o=``, a malformed ``o=``, ``c=`` or
``m=`` line, or too many m-lines. Whether the offer is *usable* is ``answer.py``'s call.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from callvault.sdp.codecs import STATIC_PAYLOAD_TYPES, Codec
from callvault.sdp.crypto import CryptoAttribute
from callvault.sdp.errors import SdpError

__all__ = [
    "DIRECTIONS",
    "MAX_MEDIA",
    "Attribute",
    "Connection",
    "MediaDescription",
    "Origin",
    "SessionDescription",
]

MAX_MEDIA = 32
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
Attribute = tuple[str, str | None]

# RFC 8866 5: the order of the optional lines; unknown letters go after the known ones.
_SESSION_BEFORE_C = ("i", "u", "e", "p")
_MEDIA_BEFORE_C = ("i",)
_MAX_SHOWN = 60


def _shown(text: str) -> str:
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


@dataclass(slots=True)
class Origin:
    """The ``o=`` line."""

    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )

    @classmethod
    def parse(cls, value: str) -> Origin:
        fields = value.split()
        if len(fields) != 6:
            raise SdpError(f"Bad o= line: {_shown(value)}")
        return cls(*fields)


@dataclass(slots=True)
class Connection:
    """A ``c=`` line; ``address`` is kept without IPv6 brackets."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @classmethod
    def parse(cls, value: str) -> Connection:
        fields = value.split()
        if len(fields) != 3:
            raise SdpError(f"Bad c= line: {_shown(value)}")
        address = fields[2]
        if address.startswith("[") and address.endswith("]"):
            address = address[1:-1]
        return cls(fields[0], fields[1], address)

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP6`` for an IPv6 address, ``IN IP4`` otherwise."""
        return cls("IN", "IP6" if ":" in address else "IP4", address)

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl`` or ``/count`` suffix."""
        return self.address.split("/", 1)[0]

    @property
    def is_unspecified(self) -> bool:
        """``0.0.0.0`` or ``::``: the RFC 2543 way to put a stream on hold."""
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:
            return False


@dataclass(slots=True, repr=False)
class MediaDescription:
    """One m-line with its own ``c=``, other lines and attributes (in order).

    ``connection`` and ``direction`` fall back to the session level; that works for a
    MediaDescription that belongs to a ``SessionDescription`` (set when it is built).
    """

    media: str
    port: int
    proto: str
    formats: list[str] = field(default_factory=list)
    port_count: int | None = None
    media_connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    session: SessionDescription | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        return (
            f"<MediaDescription {self.media} {self.port} {self.proto} "
            f"{' '.join(self.formats)} label={self.label!r}>"
        )

    def __str__(self) -> str:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        out = [f"m={' '.join([self.media, port, self.proto, *self.formats])}"]
        out.extend(f"{k}={v}" for k, v in self.lines if k in _MEDIA_BEFORE_C)
        if self.media_connection is not None:
            out.append(f"c={self.media_connection}")
        out.extend(f"{k}={v}" for k, v in self.lines if k not in _MEDIA_BEFORE_C)
        out.extend(_attribute_line(name, value) for name, value in self.attributes)
        return "\r\n".join(out) + "\r\n"

    # -- attributes ---------------------------------------------------------------
    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name`` (``""`` for a flag), or ``None``."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    @property
    def connection(self) -> Connection | None:
        """The media-level ``c=``, else the session-level one, else ``None``."""
        if self.media_connection is not None:
            return self.media_connection
        return self.session.connection if self.session is not None else None

    @property
    def explicit_direction(self) -> str | None:
        """The direction attribute of this m-line, if it has one."""
        return _direction(self.attributes)

    @property
    def direction(self) -> str:
        """Media-level direction, else session-level, else ``"sendrecv"`` (RFC 3264 5.1)."""
        own = self.explicit_direction
        if own is not None:
            return own
        if self.session is not None:
            inherited = _direction(self.session.attributes)
            if inherited is not None:
                return inherited
        return "sendrecv"

    @property
    def label(self) -> str | None:
        """``a=label`` (RFC 4574): how SIPREC metadata names this stream."""
        return self.attribute("label")

    @property
    def ptime(self) -> int | None:
        return _milliseconds(self.attribute("ptime"))

    @property
    def maxptime(self) -> int | None:
        return _milliseconds(self.attribute("maxptime"))

    @property
    def fmtp(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if _is_decimal(pt) and len(pt) <= 3 and int(pt) not in out:
                out[int(pt)] = params.strip()
        return out

    @property
    def declared_rtpmap(self) -> dict[int, tuple[str, int, int]]:
        """Only what ``a=rtpmap`` lines say (malformed lines are skipped)."""
        out: dict[int, tuple[str, int, int]] = {}
        for value in self.attribute_values("rtpmap"):
            parsed = _parse_rtpmap(value)
            if parsed is not None and parsed[0] not in out:
                out[parsed[0]] = parsed[1]
        return out

    @property
    def codecs(self) -> list[Codec]:
        """Every format of the m-line that has a known encoding, in m-line order.

        A static payload type without ``a=rtpmap`` takes its name from RFC 3551
        (``declared=False``); a dynamic one without ``a=rtpmap`` is left out.
        """
        declared = self.declared_rtpmap
        fmtp = self.fmtp
        out: list[Codec] = []
        seen: set[int] = set()
        for fmt in self.formats:
            if not _is_decimal(fmt) or len(fmt) > 3:
                continue
            pt = int(fmt)
            if pt in seen:
                continue
            seen.add(pt)
            if pt in declared:
                encoding, rate, channels = declared[pt]
                out.append(Codec(pt, encoding, rate, channels, fmtp.get(pt), declared=True))
            elif pt in STATIC_PAYLOAD_TYPES:
                encoding, rate, channels = STATIC_PAYLOAD_TYPES[pt]
                out.append(Codec(pt, encoding, rate, channels, fmtp.get(pt), declared=False))
        return out

    @property
    def rtpmap(self) -> dict[int, tuple[str, int, int]]:
        """Payload type -> (encoding, clock rate, channels), static types included."""
        return {c.payload_type: (c.encoding, c.clock_rate, c.channels) for c in self.codecs}

    @property
    def crypto(self) -> list[CryptoAttribute]:
        """The usable ``a=crypto`` lines; malformed ones are skipped (RFC 4568 says to
        ignore a crypto attribute the answerer cannot parse)."""
        out: list[CryptoAttribute] = []
        for value in self.attribute_values("crypto"):
            try:
                out.append(CryptoAttribute.parse(value))
            except SdpError:
                continue
        return out

    @property
    def is_paused(self) -> bool:
        """No media will flow from the SRC: port 0, ``inactive``, ``recvonly`` (the SRC
        only ever sends), or a hold address ``0.0.0.0`` / ``::``."""
        if self.port == 0 or self.direction in ("inactive", "recvonly"):
            return True
        connection = self.connection
        return connection is not None and connection.is_unspecified


@dataclass(slots=True, repr=False)
class SessionDescription:
    """A whole SDP body; ``str()`` serialises it with CRLF line ends."""

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0
    has_session_name: bool = True

    def __post_init__(self) -> None:
        self.link()

    def link(self) -> None:
        """Point every media description at this session (for inherited values)."""
        for media in self.media:
            media.session = self

    def __repr__(self) -> str:
        labels = [m.label for m in self.media]
        return f"<SessionDescription o={self.origin} media={len(self.media)} labels={labels}>"

    def __str__(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}"]
        if self.has_session_name:
            out.append(f"s={self.session_name}")
        out.extend(f"{k}={v}" for k, v in self.lines if k in _SESSION_BEFORE_C)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"{k}={v}" for k, v in self.lines if k not in _SESSION_BEFORE_C)
        out.extend(_attribute_line(name, value) for name, value in self.attributes)
        return "\r\n".join(out) + "\r\n" + "".join(str(m) for m in self.media)

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    @property
    def labels(self) -> list[str | None]:
        return [m.label for m in self.media]

    @classmethod
    def parse(cls, data: bytes | str, *, max_media: int = MAX_MEDIA) -> SessionDescription:
        """Parse an SDP body; raises ``SdpError`` (status 400)."""
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                # Some SRCs put Latin-1 in s= or i=; the structure is ASCII anyway.
                text = data.decode("latin-1")
        else:
            text = data
        lines = _split_lines(text)
        if not lines:
            raise SdpError("SDP body is empty")
        if lines[0][0] != "v":
            raise SdpError("SDP does not start with v=")
        if lines[0][1].strip() != "0":
            raise SdpError(f"Unsupported SDP version {_shown(lines[0][1])}")
        session = cls(has_session_name=False)
        origin_seen = False
        current: MediaDescription | None = None
        for kind, value in lines[1:]:
            if kind == "m":
                if len(session.media) >= max_media:
                    raise SdpError(f"SDP has more than {max_media} m= lines")
                current = _parse_media_line(value)
                session.media.append(current)
            elif current is not None:
                _add_media_line(current, kind, value)
            elif kind == "o":
                if origin_seen:
                    raise SdpError("SDP has more than one o= line")
                session.origin = Origin.parse(value)
                origin_seen = True
            elif kind == "s":
                session.session_name = value
                session.has_session_name = True
            elif kind == "c":
                if session.connection is None:
                    session.connection = Connection.parse(value)
                else:
                    session.lines.append((kind, value))
            elif kind == "a":
                session.attributes.append(_parse_attribute(value))
            elif kind == "v":
                raise SdpError("SDP has more than one v= line")
            else:
                session.lines.append((kind, value))
        if not origin_seen:
            raise SdpError("SDP has no o= line")
        session.link()
        return session


def _split_lines(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r \t")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isascii() or not line[0].isalpha():
            raise SdpError(f"Bad SDP line {number}: {_shown(line)}")
        out.append((line[0], line[2:]))
    return out


def _parse_media_line(value: str) -> MediaDescription:
    fields = value.split()
    if len(fields) < 3:
        raise SdpError(f"Bad m= line: {_shown(value)}")
    port_text, _, count_text = fields[1].partition("/")
    if not _is_decimal(port_text) or len(port_text) > 5 or int(port_text) > 65535:
        raise SdpError(f"Bad m= line port: {_shown(value)}")
    port_count: int | None = None
    if count_text:
        if not _is_decimal(count_text) or len(count_text) > 5:
            raise SdpError(f"Bad m= line port: {_shown(value)}")
        port_count = int(count_text)
    return MediaDescription(
        media=fields[0],
        port=int(port_text),
        proto=fields[2],
        formats=fields[3:],
        port_count=port_count,
    )


def _add_media_line(media: MediaDescription, kind: str, value: str) -> None:
    if kind == "a":
        media.attributes.append(_parse_attribute(value))
    elif kind == "c" and media.media_connection is None:
        media.media_connection = Connection.parse(value)
    elif kind in ("v", "o", "s"):
        raise SdpError(f"SDP {kind}= line after an m= line")
    else:
        media.lines.append((kind, value))


def _parse_attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    return (name, rest if sep else None)


def _attribute_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _direction(attributes: list[Attribute]) -> str | None:
    found: str | None = None
    for name, value in attributes:
        if value is None and name in DIRECTIONS:
            found = name  # the last one wins if an SRC repeats itself
    return found


def _is_decimal(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits ("²") that int() rejects.
    return text.isascii() and text.isdigit()


def _milliseconds(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not 0 < number < 100_000:
        return None
    return int(number)


def _parse_rtpmap(value: str) -> tuple[int, tuple[str, int, int]] | None:
    pt_text, _, mapping = value.strip().partition(" ")
    parts = mapping.strip().split("/")
    if not _is_decimal(pt_text) or len(pt_text) > 3 or int(pt_text) > 127:
        return None
    if len(parts) not in (2, 3):
        return None
    encoding, rate_text = parts[0], parts[1]
    channels_text = parts[2] if len(parts) == 3 else "1"
    if not encoding or not _is_decimal(rate_text) or not _is_decimal(channels_text):
        return None
    if len(rate_text) > 7 or len(channels_text) > 3:
        return None
    return int(pt_text), (encoding, int(rate_text), int(channels_text))
