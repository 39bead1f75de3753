"""What callvault's SRS does with every RFC 4475 / RFC 5118 torture message.

``EXPECTED`` is keyed by the path relative to ``corpus/torture``. ``parses`` says
whether ``callvault.sip.parser.parse`` accepts the bytes; ``reply`` is the final status
the SRS answers with over UDP (``None``: silently dropped); ``reason`` is the exact
``SipSyntaxError``/``Rejection`` reason where parser or validation decide. Replies of
200 and 481 come from later layers (dialogs, the SRS): an INVITE or re-INVITE whose To
carries a tag for a dialog we never made gets 481 (RFC 3261 12.2.2); OPTIONS and a
new INVITE with plain SDP get 200 (an SRS also records a call without metadata).

RFC 5118 files exist twice: the archive bytes (``rfc5118/*.dat``, LF line ends, two
with a Content-Length larger than their body) and the wire form (``rfc5118/wire``).
End-to-end tests send ``WIRE_FILES``: the RFC 4475 files and the wire forms.

The configuration the replies assume is ``SRS_*`` below (the server's, see
``callvault.recording.srs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SRS_ALLOWED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO"})
# No 100rel: we do not send reliable provisional responses.
SRS_EXTENSIONS = frozenset({"siprec", "timer", "replaces", "norefersub", "path"})
# application/rs-metadata (no +xml) is the draft-era type Avaya SBCE still sends in UPDATE.
SRS_BODY_TYPES = frozenset(
    {
        "application/sdp",
        "multipart/mixed",
        "multipart/alternative",
        "application/rs-metadata+xml",
        "application/rs-metadata",
    }
)


@dataclass(frozen=True, slots=True)
class Expectation:
    parses: bool
    reply: int | None
    reason: str | None = None


Stage = Literal["parse", "validation", "core", "drop"]


def stage_of(expectation: Expectation) -> Stage:
    """Which layer produces the reply: the parser, ``check_request``, or the core."""
    if not expectation.parses:
        return "parse"
    if expectation.reply is None:
        return "drop"
    if expectation.reply in (200, 481, 488):
        return "core"
    return "validation"


EXPECTED: dict[str, Expectation] = {
    # 3.1.1.1 valid: folding, odd case, LWS around ':'; To carries tag 1918181833n and
    # no dialog exists -> 481 from the dialog layer.
    "wsinv.dat": Expectation(True, 481),
    # 3.1.1.2 valid: unknown method; "endpoints generate 501 with an Allow header".
    "intmeth.dat": Expectation(True, 501, "Not Implemented"),
    # 3.1.1.3 valid: escapes in URIs; new INVITE (To without tag) with SDP -> recorded.
    "esc01.dat": Expectation(True, 200),
    # 3.1.1.4 valid REGISTER with %00: parses; an SRS is no registrar -> 405.
    "escnull.dat": Expectation(True, 405, "Method Not Allowed"),
    # 3.1.1.5 valid: RE%47IST%45R is an unknown method, not REGISTER -> 501.
    "esc02.dat": Expectation(True, 501, "Not Implemented"),
    # 3.1.1.6 valid-but-unusual: token display name glued to '<' accepted; OPTIONS -> 200.
    "lwsdisp.dat": Expectation(True, 200),
    # 3.1.1.7 valid: long values, 34 Via lines; new INVITE with SDP -> 200.
    "longreq.dat": Expectation(True, 200),
    # 3.1.1.8 valid: REGISTER with Content-Length 0, trailing INVITE bytes ignored -> 405.
    "dblreq.dat": Expectation(True, 405, "Method Not Allowed"),
    # 3.1.1.9 valid: ';' in the user part; OPTIONS -> 200.
    "semiuri.dat": Expectation(True, 200),
    # 3.1.1.10 valid: unknown Via transports; OPTIONS -> 200.
    "transports.dat": Expectation(True, 200),
    # 3.1.1.11 valid: binary multipart body framed by Content-Length; MESSAGE is a
    # method SIP defines that an SRS does not serve -> 405 with Allow.
    "mpart01.dat": Expectation(True, 405, "Method Not Allowed"),
    # 3.1.1.12 valid response, UTF-8 reason: parses; answers nothing of ours -> dropped.
    "unreason.dat": Expectation(True, None),
    # 3.1.1.13 valid response with empty reason phrase: parses, dropped.
    "noreason.dat": Expectation(True, None),
    # 3.1.2.1 invalid: extra ';' ',' in Via and Contact -> 400.
    "badinv01.dat": Expectation(False, 400, "Malformed Via header: empty parameter"),
    # 3.1.2.2 invalid: Content-Length 9999 over UDP -> 400.
    "clerr.dat": Expectation(False, 400, "Content-Length larger than message body"),
    # 3.1.2.3 invalid: Content-Length -999 -> error (fatal on a stream).
    "ncl.dat": Expectation(False, 400, "Malformed Content-Length"),
    # 3.1.2.4 invalid: "respond 400 Bad Request because of the CSeq value".
    "scalar02.dat": Expectation(False, 400, "CSeq number out of range"),
    # 3.1.2.5 invalid response (huge CSeq): "simply discard it".
    "scalarlg.dat": Expectation(False, None, "CSeq number out of range"),
    # 3.1.2.6 invalid: unterminated quote in To -> 400.
    "quotbal.dat": Expectation(False, 400, "Unterminated quoted string in To header"),
    # 3.1.2.7 invalid: "reasonable always to reject with 400".
    "ltgtruri.dat": Expectation(False, 400, "Bad Request-URI: enclosed in <>"),
    # 3.1.2.8 invalid: LWS inside the Request-URI -> 400.
    "lwsruri.dat": Expectation(False, 400, "Bad Request-URI: embedded whitespace"),
    # 3.1.2.9 invalid: "acceptable to reject as malformed" (double SP).
    "lwsstart.dat": Expectation(False, 400, "Malformed Request-Line: extra spaces"),
    # 3.1.2.10 invalid: trailing SP on the Request-Line; rejecting is acceptable.
    "trws.dat": Expectation(False, 400, "Malformed Request-Line: trailing whitespace"),
    # 3.1.2.11 invalid: escaped headers in the Request-URI; "acceptable to reject".
    "escruri.dat": Expectation(False, 400, "Bad Request-URI: headers not allowed"),
    # 3.1.2.12 invalid Date (EST), but an element "shouldn't [reject] unless it actually
    # uses the Date header"; an SRS does not -> new INVITE with SDP -> 200.
    "baddate.dat": Expectation(True, 200),
    # 3.1.2.13 invalid: Contact addr-spec with '?' headers but no <> -> 400.
    "regbadct.dat": Expectation(
        False, 400, "Malformed Contact header: URI with ',' or '?' must be enclosed in <>"
    ),
    # 3.1.2.14 invalid: spaces inside <> -> "reasonable to reject with 400".
    "badaspec.dat": Expectation(False, 400, "Malformed To header: whitespace inside <>"),
    # 3.1.2.15 invalid: unquoted "Bell, Alexander" display name -> 400. (The archive file
    # also lacks the empty line closing the headers; a datagram ends the header section.)
    "baddn.dat": Expectation(
        False, 400, "Malformed From header: display name must be tokens or a quoted string"
    ),
    # 3.1.2.16 invalid: SIP/7.0 -> 505.
    "badvers.dat": Expectation(False, 505, "Version Not Supported"),
    # 3.1.2.17 invalid: OPTIONS with CSeq INVITE -> 400.
    "mismatch01.dat": Expectation(False, 400, "CSeq method does not match request method"),
    # 3.1.2.18 invalid: unknown method with CSeq mismatch; "501 is more future-proof".
    "mismatch02.dat": Expectation(True, 501, "Not Implemented"),
    # 3.1.2.19 invalid response code 4294967301: "simply drop it".
    "bigcode.dat": Expectation(False, None, "Malformed status code"),
    # 3.2.1 valid-but-unusual: branch is the bare magic cookie; the parser must not
    # break and we do not reject it; OPTIONS -> 200.
    "badbranch.dat": Expectation(True, 200),
    # 3.3.1 invalid: no Call-ID, From, To -> "ideally 400".
    "insuf.dat": Expectation(False, 400, "Missing Call-ID header"),
    # 3.3.2 valid-but-unusual: unknown Request-URI scheme -> 416.
    "unkscm.dat": Expectation(True, 416, "Unsupported URI Scheme"),
    # 3.3.3 valid-but-unusual: soap.beep: never meaningful to an SRS -> 416.
    "novelsc.dat": Expectation(True, 416, "Unsupported URI Scheme"),
    # 3.3.4 valid-but-unusual: non-SIP URIs in To/From/Contact parse; REGISTER -> 405
    # (the registrar's 400 does not apply: we are no registrar).
    "unksm2.dat": Expectation(True, 405, "Method Not Allowed"),
    # 3.3.5 valid-but-unusual: Require unknown -> 420 with Unsupported (Proxy-Require is
    # for proxies and ignored by a UAS).
    "bext01.dat": Expectation(True, 420, "Bad Extension"),
    # 3.3.6 valid-but-unusual: "an endpoint rejects it with 415".
    "invut.dat": Expectation(True, 415, "Unsupported Media Type"),
    # 3.3.7 valid-but-unusual: "non-registrar endpoints reject (405 is appropriate)".
    "regaut01.dat": Expectation(True, 405, "Method Not Allowed"),
    # 3.3.8 invalid: several Call-ID/To/From/CSeq -> 400.
    "multi01.dat": Expectation(False, 400, "Multiple Call-ID headers"),
    # 3.3.9 invalid: two Content-Length values -> error, fatal on a stream.
    "mcl01.dat": Expectation(False, 400, "Multiple Content-Length headers"),
    # 3.3.10 valid-but-unusual response: parses; "an endpoint should simply discard it".
    "bcast.dat": Expectation(True, None),
    # 3.3.11 valid-but-unusual: Max-Forwards 0; an endpoint processes it -> OPTIONS 200.
    "zeromf.dat": Expectation(True, 200),
    # 3.3.12-3.3.14 valid-but-unusual REGISTERs: parse; SRS -> 405.
    "cparam01.dat": Expectation(True, 405, "Method Not Allowed"),
    "cparam02.dat": Expectation(True, 405, "Method Not Allowed"),
    "regescrt.dat": Expectation(True, 405, "Method Not Allowed"),
    # 3.3.15 valid-but-unusual: Accept: text/nobodyKnowsThis. 406 "could" be sent, but
    # an SRS must ignore Accept (Intrado VIPER sends SIPREC INVITEs whose Accept lacks
    # application/sdp); new INVITE with SDP -> 200.
    "sdp01.dat": Expectation(True, 200),
    # 3.4.1 valid-but-unusual RFC 2543 INVITE (no branch, no From tag, no Content-Length:
    # body = rest of datagram); "should be accepted" -> 200.
    "inv2543.dat": Expectation(True, 200),
}

# RFC 5118: (file name, expectation of the wire form, expectation of the archive form).
_RFC5118: dict[str, tuple[Expectation, Expectation | None]] = {
    # 4.1 valid: IPv6 references in Request-URI, Via, Contact; REGISTER -> 405.
    "ipv6-good.dat": (Expectation(True, 405, "Method Not Allowed"), None),
    # 4.2 invalid: bare IPv6 in the Request-URI -> "should respond 400".
    "ipv6-bad.dat": (
        Expectation(False, 400, "Bad Request-URI: IPv6 address must be enclosed in []"),
        None,
    ),
    # 4.3 valid-but-unusual: [2001:db8::10:5070] is an address without port -> 405.
    "port-ambiguous.dat": (Expectation(True, 405, "Method Not Allowed"), None),
    # 4.4 valid: [2001:db8::10]:5070 -> 405.
    "port-unambiguous.dat": (Expectation(True, 405, "Method Not Allowed"), None),
    # 4.5 valid-but-unusual: received=[...] accepted; BYE with To tag, no dialog -> 481.
    "via-received-param-with-delim.dat": (Expectation(True, 481), None),
    # 4.5 valid: received without brackets; OPTIONS -> 200.
    "via-received-param-no-delim.dat": (Expectation(True, 200), None),
    # 4.6 valid: new INVITE with IPv6 SDP. It parses, but its only audio is G726-32,
    # which the recorder does not take (and video it never records): nothing to
    # record -> 488 (RFC 3261 21.4.26). The archive says Content-Length 268 for a
    # 242-octet body: over UDP that is RFC 3261 18.3's 400.
    "ipv6-in-sdp.dat": (
        Expectation(True, 488, "Not Acceptable Here: no stream callvault can record"),
        Expectation(False, 400, "Content-Length larger than message body"),
    ),
    # 4.7 valid: mixed IPv4/IPv6 Vias; BYE with To tag, no dialog -> 481.
    "mult-ip-in-header.dat": (Expectation(True, 481), None),
    # 4.8 valid: IPv4 and IPv6 media -> 200. Archive: Content-Length 181, body 180 -> 400.
    "mult-ip-in-sdp.dat": (
        Expectation(True, 200),
        Expectation(False, 400, "Content-Length larger than message body"),
    ),
    # 4.9 valid: IPv4-mapped IPv6 in Via, Contact and SDP; parses (the archive
    # Content-Length matches its LF body). Like 4.6 its audio is G726-32 only -> 488.
    "ipv4-mapped-ipv6.dat": (
        Expectation(True, 488, "Not Acceptable Here: no stream callvault can record"),
        None,
    ),
    # 4.10 valid-but-unusual: the 3-colon form must be tolerated; OPTIONS -> 200.
    "ipv6-bug-abnf-3-colons.dat": (Expectation(True, 200), None),
    # 4.10 valid: the 2-colon form; OPTIONS -> 200.
    "ipv6-correct-abnf-2-colons.dat": (Expectation(True, 200), None),
}

for _name, (_wire, _archive) in _RFC5118.items():
    EXPECTED[f"rfc5118/wire/{_name}"] = _wire
    EXPECTED[f"rfc5118/{_name}"] = _wire if _archive is None else _archive

WIRE_FILES: tuple[str, ...] = tuple(
    name for name in EXPECTED if not name.startswith("rfc5118/") or "/wire/" in name
)
