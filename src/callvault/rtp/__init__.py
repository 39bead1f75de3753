"""RTP layer: packets, RTCP, per-stream statistics, pcap captures and SRTP receive.

Sans-IO: nothing here opens a socket or reads the clock; arrival times come in as
``now``. ``server/`` feeds received datagrams through ``peek_rtp`` ->
``StreamStatistics.update`` -> ``PcapWriter.write_packet``.
"""

from callvault.rtp.packet import (
    RTP_HEADER_SIZE,
    RtpError,
    RtpHeader,
    RtpHeaderExtension,
    RtpPacket,
    is_rtcp,
    parse_rtp,
    parse_rtp_header,
    peek_rtp,
)
from callvault.rtp.pcap import CapturedPacket, PcapError, PcapWriter, read_pcap
from callvault.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    parse_rtcp,
)
from callvault.rtp.srtp import SRTP_SUITES, SrtpError, SrtpReceiver
from callvault.rtp.stats import StreamStatistics, StreamStatsSnapshot

__all__ = [
    "RTP_HEADER_SIZE",
    "SRTP_SUITES",
    "Bye",
    "CapturedPacket",
    "PcapError",
    "PcapWriter",
    "ReceiverReport",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "RtpError",
    "RtpHeader",
    "RtpHeaderExtension",
    "RtpPacket",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "SrtpError",
    "SrtpReceiver",
    "StreamStatistics",
    "StreamStatsSnapshot",
    "is_rtcp",
    "parse_rtcp",
    "parse_rtp",
    "parse_rtp_header",
    "peek_rtp",
    "read_pcap",
]
