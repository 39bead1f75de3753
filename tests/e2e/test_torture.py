"""Every RFC 4475 / RFC 5118 torture message, sent over UDP to a real server.

Each gets exactly the final reply ``tests/sip/torture_expectations.py`` derives from
what the RFCs prescribe (or silence, for the responses an element must drop), and
afterwards the server still answers: nothing crashed or stalled it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.corpus import TORTURE_CORPUS
from tests.e2e.harness import ServerProcess
from tests.e2e.sip_client import SipClient
from tests.sip.torture_expectations import EXPECTED, WIRE_FILES


@pytest.fixture(scope="module")
def torture_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("torture") / "data").start()
    yield server
    server.stop()


_seen_transactions: set[bytes] = set()


def _own_transaction(data: bytes, wire_file: str) -> bytes:
    """Several RFC messages reuse one Via branch and sent-by (e.g. cparam01/cparam02).

    By RFC 3261 17.2.3 the second is a retransmission of the first and is answered
    from the first transaction, toward the first message's (closed) socket. Each file
    is a separate test here, so a reused branch gets the file's name appended; no
    other byte changes.
    """
    head = data.split(b"\r\n\r\n", 1)[0]
    via = re.search(rb"(?im)^(?:via|v)\s*:.*?branch\s*=\s*([^;,\s]+)", head)
    method = data.split(b" ", 1)[0]
    if via is None:
        return data
    key = method + b" " + via.group(0)
    if key not in _seen_transactions:
        _seen_transactions.add(key)
        return data
    end = via.end(1)
    suffix = re.sub(r"\W", "", wire_file).encode()
    return data[:end] + suffix + data[end:]


def _expectation_key(wire_file: str) -> str:
    return wire_file.replace("rfc5118/wire/", "rfc5118/")


@pytest.mark.parametrize("wire_file", WIRE_FILES)
def test_torture_message_gets_the_prescribed_reply(
    torture_server: ServerProcess, wire_file: str
) -> None:
    expectation = EXPECTED.get(wire_file) or EXPECTED[_expectation_key(wire_file)]
    if wire_file.startswith("rfc5118/wire/"):
        # The wire form is what travels; the archive form's expectation covers parsing.
        expectation = EXPECTED.get(wire_file, expectation)
    client = SipClient(torture_server.sip_port, "udp")
    try:
        client.send(_own_transaction((TORTURE_CORPUS / wire_file).read_bytes(), wire_file))
        reply = client.final(timeout=2.0 if expectation.reply is None else 10.0)
    finally:
        client.close()
    if expectation.reply is None:
        assert reply is None, f"expected silence, got {reply}"
        return
    assert reply is not None, "no reply"
    assert reply.status == expectation.reply, (reply.status, reply.reason)
    if expectation.reason is not None:
        assert reply.reason == expectation.reason


def test_server_still_answers_after_the_torture(torture_server: ServerProcess) -> None:
    options = (
        b"OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKafter-torture\r\n"
        b"From: <sip:probe@127.0.0.1>;tag=probe\r\n"
        b"To: <sip:srs@127.0.0.1>\r\n"
        b"Call-ID: after-torture\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    client = SipClient(torture_server.sip_port, "udp")
    try:
        client.send(options)
        reply = client.final()
    finally:
        client.close()
    assert reply is not None and reply.status == 200
    assert "INVITE" in (reply.header("Allow") or "")
    assert torture_server.process is not None and torture_server.process.poll() is None
