from __future__ import annotations

from callvault.recording.correlation import call_keys
from callvault.siprec.offer import read_offer
from tests.recording.helpers import corpus_request


def _keys(name: str) -> list[tuple[str, str]]:
    request = corpus_request(name)
    offer = read_offer(request.headers.get("Content-Type") or "", request.body)
    return call_keys(request, offer.metadata)


def test_broadworks_correlation_from_header_and_metadata() -> None:
    keys = _keys("webex_calling_2streams_metadata_first.sip")
    assert ("broadworks-correlation", "45a32b36-2a6a-4ec1-9cf3-47824099fcd4") in keys
    assert ("siprec-group", "urn:uuid:31da9b20-3e4f-4d3e-a11a-bcaeef61e38f") in keys
    assert keys[-1] == ("rs-call-id", "BW035543205130524-1049384737@10.155.7.148")


def test_unrelated_calls_share_no_key() -> None:
    """Grouping must never merge two customers' calls."""
    names = [
        "cisco_cube_2streams_gtd.sip",
        "webex_calling_2streams_metadata_first.sip",
        "avaya_sbce_2streams.sip",
        "oracle_acme_sbc_2streams.sip",
        "sonus_ribbon_sbc_2streams.sip",
    ]
    seen: dict[tuple[str, str], str] = {}
    for name in names:
        for key in _keys(name):
            assert key not in seen, (key, seen.get(key), name)
            seen[key] = name


def test_cisco_guid_and_cs_session_ids() -> None:
    keys = _keys("cisco_cube_2streams_gtd.sip")
    assert ("cisco-guid", "2432917800-1464078823-2314850559-1455670872") in keys
    assert ("cs-session-id", "e9fffff2020a598b86962867715db0cf") in keys
    assert ("cs-session-id", "cd0f7093d62c5f0697098fd69a4aa57b") in keys


def test_null_session_uuid_is_never_a_key() -> None:
    for name in ("cisco_cube_2streams_gtd.sip", "webex_calling_2streams_metadata_first.sip"):
        assert all(value != "0" * 32 for _, value in _keys(name))


def test_avaya_ucid_is_a_key() -> None:
    keys = _keys("oracle_acme_sbc_avaya_ucid.sip")
    assert any(kind == "avaya_ucid" for kind, _ in keys), keys
