"""What a UAS core checks after a successful parse, before handling the method.

``check_request`` applies RFC 3261 8.2 in this order and returns the first
``Rejection`` (status, reason and the headers that response must carry) or ``None``:

1. Request-URI scheme other than sip/sips -> 416 (8.2.2.1);
2. method not served -> 405 with Allow when it is a method SIP defines, 501 with Allow
   when it is unknown (8.2.1); a CSeq naming another method -> 400 (the parser leaves
   that to this step for unknown methods, RFC 4475 3.1.2.18);
3. Require with option tags we do not support -> 420 with Unsupported (8.2.2.3);
4. body with a Content-Type we do not accept -> 415 with Accept; a Content-Encoding
   other than identity -> 415 with Accept-Encoding (8.2.3).

ACK is never rejected (it has no response) and CANCEL is not checked for Require
(8.2.2.3) or bodies. The Accept header of the request is deliberately not checked:
SIPREC clients (Intrado VIPER) send Accept lists without application/sdp and still
expect an SDP answer. Nothing here knows about dialogs or transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.sip.errors import SipSyntaxError
from callvault.sip.message import STANDARD_METHODS, Request, parse_cseq


@dataclass(frozen=True, slots=True)
class Rejection:
    """A final response the UAS core must send instead of handling the request."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def check_request(
    request: Request,
    *,
    allowed_methods: frozenset[str],
    supported_extensions: frozenset[str],
    accepted_body_types: frozenset[str],
    known_methods: frozenset[str] = STANDARD_METHODS,
) -> Rejection | None:
    """The rejection ``request`` deserves, or ``None`` when it may be handled.

    ``accepted_body_types`` are lower-case ``type/subtype`` strings; option tags and
    media types compare case-insensitively.
    """
    method = request.method
    if method == "ACK":
        return None
    scheme = request.uri.partition(":")[0].lower()
    if scheme not in ("sip", "sips"):
        return Rejection(416, "Unsupported URI Scheme")
    if method not in allowed_methods:
        allow = (("Allow", ", ".join(sorted(allowed_methods))),)
        if method in known_methods:
            return Rejection(405, "Method Not Allowed", allow)
        return Rejection(501, "Not Implemented", allow)
    try:
        _, cseq_method = parse_cseq(request.headers.get("CSeq") or "")
    except SipSyntaxError as err:
        return Rejection(400, err.reason)
    if cseq_method != method:
        return Rejection(400, "CSeq method does not match request method")
    if method == "CANCEL":
        return None
    supported = {tag.lower() for tag in supported_extensions}
    unsupported = [t for t in request.headers.get_all("Require") if t.lower() not in supported]
    if unsupported:
        return Rejection(420, "Bad Extension", (("Unsupported", ", ".join(unsupported)),))
    return _check_body(request, accepted_body_types)


def _check_body(request: Request, accepted_body_types: frozenset[str]) -> Rejection | None:
    if not request.body:
        return None
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        # RFC 3261 20.15: Content-Type MUST be present when the body is not empty.
        return Rejection(400, "Missing Content-Type header")
    media_type = content_type.partition(";")[0].replace(" ", "").replace("\t", "").lower()
    accepted = {t.lower() for t in accepted_body_types}
    if media_type not in accepted:
        return Rejection(415, "Unsupported Media Type", (("Accept", ", ".join(sorted(accepted))),))
    for coding in request.headers.get_all("Content-Encoding"):
        if coding.strip().lower() != "identity":
            return Rejection(415, "Unsupported Media Type", (("Accept-Encoding", "identity"),))
    return None
