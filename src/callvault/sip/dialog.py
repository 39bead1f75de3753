"""SIP dialogs on the UAS side (RFC 3261 section 12) and the requests built from them.

A ``Dialog`` is made from the INVITE we accept (12.1.1): Call-ID, both tags, both URIs,
the remote target and route set, and both CSeq spaces. ``accept_request`` checks an
incoming in-dialog request (12.2.2); ``create_request`` builds ours (12.2.1.1), such as
the BYE that ends a recording. ``DialogTable`` finds the dialog of a request. Also here:
fresh tags and branches, and the ACK and CANCEL a UAC derives from its INVITE
(17.1.1.3, 9.1). Session timers (RFC 4028) live in ``callvault.sip.timers`` and are
re-exported. Pure data: no I/O, no clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from random import Random
from typing import NamedTuple

from callvault.sip.errors import SipSyntaxError
from callvault.sip.events import Peer
from callvault.sip.headers import Headers
from callvault.sip.message import Request, Response
from callvault.sip.timers import (
    MIN_SE_FLOOR,
    SessionTimer,
    SessionTimerDecision,
    negotiate_session_timer,
)

MAGIC_COOKIE = "z9hG4bK"

# Methods whose Contact replaces the remote target (RFC 3261 12.2, RFC 3311, RFC 6665).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


def new_tag(rng: Random | None = None) -> str:
    """A From/To tag with 64 random bits (``rng`` makes it reproducible in tests)."""
    bits = rng.getrandbits(64) if rng is not None else secrets.randbits(64)
    return f"{bits:016x}"


def new_branch(rng: Random | None = None) -> str:
    """A Via branch: the RFC 3261 magic cookie followed by 80 random bits."""
    bits = rng.getrandbits(80) if rng is not None else secrets.randbits(80)
    return f"{MAGIC_COOKIE}{bits:020x}"


class Rejection(NamedTuple):
    """How to answer a request the dialog refuses (indexable: ``status, reason``)."""

    status: int
    reason: str


@dataclass(slots=True, eq=False)
class Dialog:
    """One UAS dialog. ``local_cseq`` is the last CSeq number we used (0: none yet)."""

    call_id: str
    local_tag: str
    remote_tag: str  # "" for an RFC 2543 peer that sent no From tag (12.1.1)
    local_uri: str
    remote_uri: str
    remote_target: str
    route_set: tuple[str, ...]
    remote_cseq: int | None
    local_cseq: int
    local_contact: str
    peer: Peer
    secure: bool
    local_via_host: str
    local_via_port: int
    transport: str
    rng: Random | None = field(default=None, repr=False)

    @property
    def id(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag): the dialog ID of RFC 3261 12."""
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_invite(
        cls,
        request: Request,
        local_tag: str,
        local_contact: str,
        peer: Peer,
        *,
        first_cseq: int = 1,
        local_via_host: str | None = None,
        local_via_port: int | None = None,
        transport: str | None = None,
        rng: Random | None = None,
    ) -> Dialog:
        """The dialog a 2xx to ``request`` creates (12.1.1).

        The Via sent-by of our requests defaults to the host and port of
        ``local_contact``; our first request gets CSeq ``first_cseq``. An RFC 2543 INVITE
        without Contact makes the From URI the remote target.
        """
        contacts = request.headers.get_all("Contact")
        remote_uri = uri_of(request.headers.get("From") or "")
        host, port = _hostport(uri_of(local_contact), secure=peer.transport == "tls")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_tag or "",
            local_uri=uri_of(request.headers.get("To") or ""),
            remote_uri=remote_uri,
            remote_target=uri_of(contacts[0]) if contacts else remote_uri,
            route_set=tuple(request.headers.get_all("Record-Route")),
            remote_cseq=request.cseq[0],
            local_cseq=first_cseq - 1,
            local_contact=local_contact,
            peer=peer,
            secure=peer.transport == "tls" and request.uri.lower().startswith("sips:"),
            local_via_host=local_via_host or host,
            local_via_port=local_via_port or port,
            transport=(transport or peer.transport).upper(),
            rng=rng,
        )

    def accept_request(self, request: Request) -> Rejection | None:
        """Check an in-dialog request (12.2.2); ``None`` means go ahead.

        CSeq must grow: a lower or equal one is answered 500 "Out of order CSeq"
        (ACK and CANCEL reuse the number of the request they refer to). A target
        refresh request's Contact becomes the new remote target.
        """
        if (request.call_id, request.to_tag or "", request.from_tag or "") != self.id:
            return Rejection(481, "Call/Transaction Does Not Exist")
        try:
            number, _ = request.cseq
        except SipSyntaxError as exc:
            return Rejection(400, exc.reason)
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_cseq is not None and number <= self.remote_cseq:
            return Rejection(500, "Out of order CSeq")
        self.remote_cseq = number
        contacts = request.headers.get_all("Contact")
        if request.method in TARGET_REFRESH_METHODS and contacts:
            self.remote_target = uri_of(contacts[0])
        return None

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """Our next request in this dialog (12.2.1.1), with a new branch.

        The local CSeq grows by one, except for ACK, which reuses the CSeq of the
        INVITE it acknowledges (our last request).
        """
        if method != "ACK":
            self.local_cseq += 1
        uri, routes = self._target_and_routes()
        host = self.local_via_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        headers = Headers()
        headers.add(
            "Via",
            f"SIP/2.0/{self.transport} {host}:{self.local_via_port};branch={new_branch(self.rng)}",
        )
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route)
        headers.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        to_tag = f";tag={self.remote_tag}" if self.remote_tag else ""
        headers.add("To", f"<{self.remote_uri}>{to_tag}")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        if method in TARGET_REFRESH_METHODS:
            headers.add("Contact", self.local_contact)
        for name, value in extra_headers:
            headers.add(name, value)
        if body and content_type:
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    def _target_and_routes(self) -> tuple[str, tuple[str, ...]]:
        if not self.route_set or _loose(self.route_set[0]):
            return self.remote_target, self.route_set
        # A strict router (RFC 2543) first: it goes into the Request-URI and the
        # remote target moves to the end of the Route set (12.2.1.1).
        return uri_of(self.route_set[0]), (*self.route_set[1:], f"<{self.remote_target}>")


class DialogTable:
    """The live dialogs, bounded by ``max_dialogs``, keyed by ``Dialog.id``."""

    def __init__(self, max_dialogs: int = 100_000) -> None:
        self.max_dialogs = max_dialogs
        self._dialogs: dict[tuple[str, str, str], Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    @property
    def full(self) -> bool:
        return len(self._dialogs) >= self.max_dialogs

    def add(self, dialog: Dialog) -> None:
        """Add (or replace) a dialog; ``OverflowError`` when the table is full."""
        if dialog.id not in self._dialogs and self.full:
            raise OverflowError(f"dialog table is full ({self.max_dialogs} dialogs)")
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.id, None)

    def get(self, dialog_id: tuple[str, str, str]) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def find(self, request: Request) -> Dialog | None:
        """The dialog of an incoming request: Call-ID, To tag (ours), From tag (theirs)."""
        return self._dialogs.get((request.call_id, request.to_tag or "", request.from_tag or ""))


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 final to ``invite`` (17.1.1.3): same branch, response's To."""
    return _derived(invite, "ACK", response.headers.get("To") or "")


def make_cancel(invite: Request) -> Request:
    """The CANCEL for a pending client INVITE (9.1): same branch, so it matches it."""
    return _derived(invite, "CANCEL", invite.headers.get("To") or "")


def _derived(invite: Request, method: str, to: str) -> Request:
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.get_raw_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", to)
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} {method}")
    return Request(method, invite.uri, headers)


def uri_of(value: str) -> str:
    """The URI of a name-addr or addr-spec header value (its header params dropped)."""
    value = value.strip()
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0].strip()
    return value.split(";", 1)[0].strip()


def _loose(route: str) -> bool:
    """Whether a Route/Record-Route URI carries ``;lr`` (a loose router, RFC 3261)."""
    uri = uri_of(route)
    host_part = uri.rsplit("@", 1)[-1].split("?", 1)[0]
    return any(p.split("=", 1)[0].strip().lower() == "lr" for p in host_part.split(";")[1:])


def _hostport(uri: str, *, secure: bool) -> tuple[str, int]:
    """Host and port of a SIP URI; the port defaults to 5060 (5061 for sips/TLS)."""
    scheme, _, rest = uri.partition(":")
    secure = secure or scheme.lower() == "sips"
    hostport = rest.rsplit("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = hostport.partition(":")
    port = int(port_text) if port_text.isdigit() else (5061 if secure else 5060)
    return host, port


__all__ = [
    "MAGIC_COOKIE",
    "MIN_SE_FLOOR",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogTable",
    "Rejection",
    "SessionTimer",
    "SessionTimerDecision",
    "make_ack",
    "make_cancel",
    "negotiate_session_timer",
    "new_branch",
    "new_tag",
    "uri_of",
]
