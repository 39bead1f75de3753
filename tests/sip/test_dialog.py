"""UAS dialogs (RFC 3261 12), in-dialog requests and session timers (RFC 4028)."""

from __future__ import annotations

from random import Random

import pytest

from callvault.sip.dialog import (
    Dialog,
    DialogTable,
    Rejection,
    SessionTimer,
    make_ack,
    make_cancel,
    negotiate_session_timer,
    new_branch,
    new_tag,
    uri_of,
)
from callvault.sip.events import Peer
from callvault.sip.headers import Headers
from callvault.sip.message import Request, make_response, parse_message
from tests.corpus import TORTURE_CORPUS

UDP = Peer("udp", "192.0.2.10", 5060)
CONTACT = "<sip:srs.example.net:5080;transport=udp>"


def invite(*extra: tuple[str, str], uri: str = "sip:srs@example.net", cseq: int = 10) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKsrc1"),
            ("Max-Forwards", "70"),
            ("From", '"SRC" <sip:src@example.com>;tag=src-1'),
            ("To", "<sip:srs@example.net>"),
            ("Call-ID", "call-1@192.0.2.10"),
            ("CSeq", f"{cseq} INVITE"),
            ("Contact", "<sip:src@192.0.2.10:5060;transport=udp>;expires=60"),
            *extra,
        ]
    )
    return Request("INVITE", uri, headers)


def in_dialog(method: str, cseq: int, *extra: tuple[str, str]) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx"),
            ("From", "<sip:src@example.com>;tag=src-1"),
            ("To", "<sip:srs@example.net>;tag=srs-1"),
            ("Call-ID", "call-1@192.0.2.10"),
            ("CSeq", f"{cseq} {method}"),
            *extra,
        ]
    )
    return Request(method, "sip:srs.example.net:5080", headers)


def dialog(*extra: tuple[str, str], **kw: object) -> Dialog:
    return Dialog.from_invite(invite(*extra), "srs-1", CONTACT, UDP, rng=Random(3), **kw)  # type: ignore[arg-type]


# -- creation ---------------------------------------------------------------------------


def test_from_invite_captures_the_dialog_state() -> None:
    d = dialog(
        ("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
        ("Record-Route", "<sip:p3.example.com;lr>"),
    )
    assert d.id == ("call-1@192.0.2.10", "srs-1", "src-1")
    assert d.remote_uri == "sip:src@example.com"
    assert d.local_uri == "sip:srs@example.net"
    assert d.remote_target == "sip:src@192.0.2.10:5060;transport=udp"
    assert d.route_set == (
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
        "<sip:p3.example.com;lr>",
    )
    assert (d.remote_cseq, d.local_cseq) == (10, 0)
    assert (d.local_via_host, d.local_via_port, d.transport) == ("srs.example.net", 5080, "UDP")
    assert d.secure is False and d.peer == UDP


def test_secure_only_for_sips_over_tls() -> None:
    tls = Peer("tls", "192.0.2.10", 5061, 3)
    d = Dialog.from_invite(invite(uri="sips:srs@example.net"), "t", "<sips:srs.example.net>", tls)
    assert d.secure is True
    assert (d.local_via_port, d.transport) == (5061, "TLS")
    assert Dialog.from_invite(invite(), "t", CONTACT, tls).secure is False


def test_via_sent_by_can_be_given_explicitly() -> None:
    d = dialog(local_via_host="203.0.113.5", local_via_port=5062, transport="tcp", first_cseq=500)
    bye = d.create_request("BYE")
    assert bye.headers.get("Via") or "".startswith("SIP/2.0/TCP 203.0.113.5:5062;branch=z9hG4bK")
    assert bye.cseq == (500, "BYE")


def test_torture_inv2543_dialog_uses_from_as_target_and_a_strict_router() -> None:
    # RFC 4475 3.4.1: no From tag (a null remote tag, 12.1.1), no Contact, and a
    # Record-Route without ;lr, i.e. an RFC 2543 strict router.
    request = parse_message((TORTURE_CORPUS / "inv2543.dat").read_bytes())
    assert isinstance(request, Request)
    d = Dialog.from_invite(request, "srs-9", CONTACT, UDP)
    assert d.id == ("inv2543.1717@ift.client.example.com", "srs-9", "")
    assert d.remote_target == "sip:+13035551111@ift.client.example.net;user=phone"
    # Without angle brackets ";user=phone" is a To header parameter (RFC 3261 20.10).
    assert d.local_uri == "sip:+16505552222@ss1.example.net"
    bye = d.create_request("BYE")
    assert bye.uri == "sip:UserB@example.com;maddr=ss1.example.com"
    assert bye.headers.get_all("Route") == ["<sip:+13035551111@ift.client.example.net;user=phone>"]
    assert bye.headers.get("To") == "<sip:+13035551111@ift.client.example.net;user=phone>"
    table = DialogTable()
    table.add(d)
    ack = Request("ACK", "sip:x", Headers([("Call-ID", d.call_id), ("To", "<sip:a>;tag=srs-9")]))
    assert table.find(ack) is d


# -- CSeq ordering (12.2.2) ----------------------------------------------------------------


def test_in_dialog_cseq_must_grow() -> None:
    d = dialog()
    assert d.accept_request(in_dialog("INFO", 11)) is None
    assert d.remote_cseq == 11
    refusal = d.accept_request(in_dialog("UPDATE", 11))
    assert refusal == Rejection(500, "Out of order CSeq")
    assert (refusal[0], refusal[1]) == (500, "Out of order CSeq")  # callers index it
    assert d.accept_request(in_dialog("BYE", 7)) == (500, "Out of order CSeq")
    assert d.remote_cseq == 11
    assert d.accept_request(in_dialog("BYE", 12)) is None


def test_ack_and_cancel_reuse_the_cseq_of_their_request() -> None:
    d = dialog()
    assert d.accept_request(in_dialog("ACK", 10)) is None
    assert d.accept_request(in_dialog("CANCEL", 10)) is None
    assert d.remote_cseq == 10


def test_target_refresh_replaces_the_remote_target() -> None:
    d = dialog()
    reinvite = in_dialog("INVITE", 11, ("Contact", "<sip:src@198.51.100.20:5070>"))
    assert d.accept_request(reinvite) is None
    assert d.remote_target == "sip:src@198.51.100.20:5070"
    info = in_dialog("INFO", 12, ("Contact", "<sip:elsewhere@198.51.100.99>"))
    d.accept_request(info)
    assert d.remote_target == "sip:src@198.51.100.20:5070"  # INFO is no target refresh


def test_requests_of_another_dialog_or_with_a_broken_cseq_are_refused() -> None:
    d = dialog()
    other = in_dialog("BYE", 11)
    other.headers.set("To", "<sip:srs@example.net>;tag=other")
    assert d.accept_request(other) == (481, "Call/Transaction Does Not Exist")
    broken = in_dialog("BYE", 11)
    broken.headers.set("CSeq", "eleven BYE")
    status, reason = d.accept_request(broken)  # type: ignore[misc]
    assert status == 400 and "CSeq" in reason


# -- our requests (12.2.1.1) ---------------------------------------------------------------


def test_bye_is_built_from_the_dialog() -> None:
    d = dialog(("Record-Route", "<sip:p1.example.com;lr>"))
    bye = d.create_request("BYE")
    assert bye.method == "BYE"
    assert bye.uri == "sip:src@192.0.2.10:5060;transport=udp"  # the remote target
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
    assert bye.headers.get("From") == "<sip:srs@example.net>;tag=srs-1"
    assert bye.headers.get("To") == "<sip:src@example.com>;tag=src-1"
    assert bye.headers.get("Call-ID") == "call-1@192.0.2.10"
    assert bye.headers.get("Max-Forwards") == "70"
    assert bye.cseq == (1, "BYE")
    assert bye.branch is not None and bye.branch.startswith("z9hG4bK")
    assert bye.headers.get("Via") or "".startswith("SIP/2.0/UDP srs.example.net:5080;branch=")
    assert "Contact" not in bye.headers  # not a target refresh request
    assert bytes(bye).endswith(b"Content-Length: 0\r\n\r\n")


def test_local_cseq_increases_and_branches_differ() -> None:
    d = dialog()
    first, second = d.create_request("INFO"), d.create_request("BYE")
    assert (first.cseq[0], second.cseq[0]) == (1, 2)
    assert first.branch != second.branch


def test_reinvite_carries_contact_body_and_extra_headers_and_its_ack_keeps_the_cseq() -> None:
    d = dialog()
    sdp = b"v=0\r\n"
    reinvite = d.create_request(
        "INVITE",
        body=sdp,
        content_type="application/sdp",
        extra_headers=[("Session-Expires", "1800;refresher=uas")],
    )
    assert reinvite.headers.get("Contact") == CONTACT
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    assert reinvite.headers.get("Session-Expires") == "1800;refresher=uas"
    assert reinvite.body == sdp
    ack = d.create_request("ACK")
    assert ack.cseq == (reinvite.cseq[0], "ACK")


def test_branches_are_deterministic_with_a_seeded_rng() -> None:
    a = Dialog.from_invite(invite(), "t", CONTACT, UDP, rng=Random(5)).create_request("BYE")
    b = Dialog.from_invite(invite(), "t", CONTACT, UDP, rng=Random(5)).create_request("BYE")
    assert a.branch == b.branch


def test_ipv6_sent_by_is_bracketed() -> None:
    d = Dialog.from_invite(invite(), "t", "<sip:[2001:db8::5]:5070>", UDP)
    assert d.local_via_host == "2001:db8::5" and d.local_via_port == 5070
    via = d.create_request("BYE").headers.get("Via") or ""
    assert via.startswith("SIP/2.0/UDP [2001:db8::5]:5070;branch=z9hG4bK")
    assert Dialog.from_invite(invite(), "t", "<sip:[2001:db8::5]>", UDP).local_via_port == 5060


def test_strict_router_first_moves_the_target_into_the_route_set() -> None:
    d = dialog(("Record-Route", "<sip:strict.example.com>, <sip:loose.example.com;lr>"))
    bye = d.create_request("BYE")
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == [
        "<sip:loose.example.com;lr>",
        "<sip:src@192.0.2.10:5060;transport=udp>",
    ]


def test_lr_is_read_from_the_uri_not_its_user_part() -> None:
    d = dialog(("Record-Route", "<sip:lr;x@strict.example.com;foo=bar>"))
    assert d.create_request("BYE").uri == "sip:lr;x@strict.example.com;foo=bar"


# -- the table ------------------------------------------------------------------------


def test_dialog_table_finds_in_dialog_requests() -> None:
    table = DialogTable(max_dialogs=2)
    d = dialog()
    table.add(d)
    table.add(d)  # re-adding is harmless
    assert len(table) == 1 and list(table) == [d]
    assert table.find(in_dialog("BYE", 11)) is d
    assert table.get(d.id) is d
    stranger = in_dialog("BYE", 11)
    stranger.headers.set("From", "<sip:src@example.com>;tag=other")
    assert table.find(stranger) is None
    table.remove(d)
    table.remove(d)
    assert table.find(in_dialog("BYE", 11)) is None and len(table) == 0


def test_dialog_table_is_bounded() -> None:
    table = DialogTable(max_dialogs=1)
    table.add(dialog())
    assert table.full
    with pytest.raises(OverflowError, match="dialog table is full"):
        table.add(Dialog.from_invite(invite(), "another-tag", CONTACT, UDP))


# -- tags, branches, ACK and CANCEL --------------------------------------------------------


def test_new_tag_and_branch() -> None:
    assert new_tag(Random(1)) == new_tag(Random(1))
    assert new_tag() != new_tag()
    assert len(new_tag()) == 16
    branch = new_branch(Random(1))
    assert branch == new_branch(Random(1))
    assert branch.startswith("z9hG4bK") and len(branch) == 27


def test_make_ack_and_make_cancel_follow_the_invite() -> None:
    request = invite(("Route", "<sip:p1.example.com;lr>"))
    request.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
    busy = make_response(request, 486, "Busy Here", to_tag="srs-1")
    ack = make_ack(request, busy)
    assert (ack.method, ack.uri, ack.cseq) == ("ACK", request.uri, (10, "ACK"))
    assert ack.headers.get_all("Via") == ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKsrc1"]
    assert ack.to_tag == "srs-1" and ack.from_tag == "src-1"
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
    cancel = make_cancel(request)
    assert (cancel.method, cancel.cseq, cancel.to_tag) == ("CANCEL", (10, "CANCEL"), None)
    assert cancel.branch == "z9hG4bKsrc1"


def test_uri_of_name_addr_and_addr_spec() -> None:
    assert uri_of('"A, B" <sip:a@b;lr>;tag=1') == "sip:a@b;lr"
    assert uri_of("sip:a@b;tag=1") == "sip:a@b"


# -- session timers (RFC 4028 section 9) -------------------------------------------------


def test_no_session_timer_without_support_or_request() -> None:
    decision = negotiate_session_timer(invite())
    assert (decision.status, decision.headers, decision.interval) == (None, (), None)
    assert decision.timer is None


def test_supported_timer_without_session_expires_gets_our_default_with_uac_refreshing() -> None:
    decision = negotiate_session_timer(invite(("Supported", "100rel, timer")))
    assert decision.status is None
    assert decision.headers == (("Session-Expires", "1800;refresher=uac"), ("Require", "timer"))
    assert (decision.interval, decision.refresher) == (1800, "uac")


def test_request_min_se_raises_our_default() -> None:
    decision = negotiate_session_timer(invite(("k", "timer"), ("Min-SE", "2400")))
    assert decision.interval == 2400


def test_session_expires_is_kept_and_refresher_honoured() -> None:
    request = invite(("Supported", "timer"), ("Session-Expires", "900;refresher=uac"))
    decision = negotiate_session_timer(request)
    assert decision.headers == (("Session-Expires", "900;refresher=uac"), ("Require", "timer"))
    uas = invite(("Supported", "timer"), ("x", "900;refresher=uas"))  # compact form
    decision = negotiate_session_timer(uas)
    assert decision.headers == (("Session-Expires", "900;refresher=uas"),)  # no Require
    assert decision.refresher == "uas"


def test_session_expires_longer_than_our_default_is_reduced_not_below_min_se() -> None:
    long = invite(("Supported", "timer"), ("Session-Expires", "7200"))
    assert negotiate_session_timer(long).interval == 1800
    floor = invite(("Supported", "timer"), ("Session-Expires", "7200"), ("Min-SE", "3600"))
    assert negotiate_session_timer(floor).interval == 3600


def test_too_small_session_expires_gets_422_with_our_min_se() -> None:
    small = invite(("Supported", "timer"), ("Session-Expires", "60"))
    decision = negotiate_session_timer(small)
    assert (decision.status, decision.reason) == (422, "Session Interval Too Small")
    assert decision.headers == (("Min-SE", "90"),)
    below_ours = invite(("Supported", "timer"), ("Session-Expires", "200"))
    assert negotiate_session_timer(below_ours, min_se=300).headers == (("Min-SE", "300"),)


def test_uac_without_timer_support_gets_uas_refresher_and_no_422() -> None:
    # A proxy inserted Session-Expires: the UAC would not understand 422 or refresh.
    request = invite(("Session-Expires", "60;refresher=uac"))
    decision = negotiate_session_timer(request)
    assert decision.status is None
    assert decision.headers == (("Session-Expires", "60;refresher=uas"),)
    assert decision.timer == SessionTimer(60, "uas")


def test_unreadable_session_timer_headers_get_400() -> None:
    bad = negotiate_session_timer(invite(("Session-Expires", "soon")))
    assert (bad.status, bad.reason) == (400, "Bad Session-Expires: 'soon'")
    bad_min = negotiate_session_timer(invite(("Session-Expires", "900"), ("Min-SE", "-1")))
    assert (bad_min.status, bad_min.reason) == (400, "Bad Min-SE: '-1'")


def test_min_se_below_90_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="min_se must be at least 90 seconds, got 30"):
        negotiate_session_timer(invite(), min_se=30)


def test_session_timer_deadlines() -> None:
    they_refresh = SessionTimer(1800, "uac")
    assert not they_refresh.local_refresher
    assert they_refresh.refresh_at(100.0) is None
    assert they_refresh.expires_at(100.0) == 100.0 + 1800 - 32  # min(32, 1800/3)
    we_refresh = SessionTimer(90, "uas")
    assert we_refresh.local_refresher
    assert we_refresh.refresh_at(0.0) == 45.0
    assert we_refresh.expires_at(0.0) == 60.0  # min(32, 90/3) = 30
