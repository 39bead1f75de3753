"""Pure audio: G.711 codecs, timeline placement of RTP streams, WAV files, rendering.

No sockets and no clock: inputs are captures and packet lists, outputs are arrays and
files. ``render_stereo_wav`` turns a session capture into a playable WAV file.
"""

from callvault.media.g711 import (
    ALAW_TO_PCM,
    ULAW_TO_PCM,
    AlawDecoder,
    UlawDecoder,
    decode_alaw,
    decode_ulaw,
    encode_alaw,
    encode_ulaw,
)
from callvault.media.render import (
    DECODERS,
    ChannelSpec,
    ChannelStats,
    RenderResult,
    StreamRenderStats,
    StreamSelector,
    UnsupportedCodec,
    decoder_for,
    render_stereo_wav,
)
from callvault.media.timeline import (
    Decoder,
    RenderedStream,
    StreamPacket,
    StreamPlacement,
    TimelineSegment,
    merge_ranges,
    place_stream,
    render_stream,
    subtract_ranges,
)
from callvault.media.wav import WavWriter, write_wav

__all__ = [
    "ALAW_TO_PCM",
    "DECODERS",
    "ULAW_TO_PCM",
    "AlawDecoder",
    "ChannelSpec",
    "ChannelStats",
    "Decoder",
    "RenderResult",
    "RenderedStream",
    "StreamPacket",
    "StreamPlacement",
    "StreamRenderStats",
    "StreamSelector",
    "TimelineSegment",
    "UlawDecoder",
    "UnsupportedCodec",
    "WavWriter",
    "decode_alaw",
    "decode_ulaw",
    "decoder_for",
    "encode_alaw",
    "encode_ulaw",
    "merge_ranges",
    "place_stream",
    "render_stereo_wav",
    "render_stream",
    "subtract_ranges",
    "write_wav",
]
