"""Pure audio: no sockets, no clock, no database. Inputs are captures, packet lists and
int16 arrays; outputs are arrays and files.

- ``decoders`` (with ``g711``, ``amr``): RTP payloads of every codec SIPREC sources send
  into PCM; ``dtmf``: RFC 4733 telephone-events into DTMF marks.
- ``timeline`` (with ``drift``, ``chunks``): one stream's packets placed on the
  recorder's clock: reordering, loss, SSRC changes, timestamp jumps, clock drift.
- ``session``: a recording session's streams out of its capture file, decoded,
  resampled and mixed.
- ``encode`` (with ``format_writers``, ``wav``): the recording formats (Ogg Opus/Vorbis,
  MP3, WAV with PCM, A-law, µ-law, GSM 6.10).
- ``analysis``: waveform peaks and talk intervals for the player.

Import from the modules themselves; this package re-exports nothing, so that reading a
G.711 table does not load FFmpeg.
"""
