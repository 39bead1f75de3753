"""The recording settings in force for one finalize job, read once at its claim.

``RecordingPolicy`` turns the effective settings (``runtime_settings``) into what the
job needs: the output format, the layout and left-channel rule, when the mixer may run
(REQUIREMENTS X6) and how files are named (T7). Reading them once per job means a
setting changed while a job runs applies from the next job on, and the values used are
stored with the recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.db.models import Recording
from callvault.media.encode import OutputFormat
from callvault.recording.naming import FilenameTemplate, unique_name
from callvault.recording.windows import MixerWindows
from callvault.runtime_settings import recording_codec

__all__ = ["RecordingPolicy", "policy_from"]


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    output_format: OutputFormat
    layout: str
    left_channel: str
    internal_aors: tuple[str, ...]
    stitch: str
    template: FilenameTemplate
    timezone: ZoneInfo
    windows: MixerWindows
    windows_timezone: ZoneInfo

    @property
    def format_options(self) -> dict[str, Any]:
        fmt = self.output_format
        options: dict[str, Any] = {"container": fmt.container, "codec": fmt.codec}
        if fmt.codec == "opus":
            options["opus_bitrate_per_channel"] = fmt.opus_bitrate
            options["opus_bitrate_per_channel_wideband"] = fmt.opus_bitrate_wideband
            options["opus_complexity"] = fmt.opus_complexity
        elif fmt.codec == "mp3":
            options["mp3_bitrate"] = fmt.mp3_bitrate
        elif fmt.codec == "vorbis":
            options["vorbis_quality"] = fmt.vorbis_quality
        return options

    def wait_until(self, now: float) -> datetime | None:
        """None when the mixer may run at ``now``; else when the next window opens."""
        moment = datetime.fromtimestamp(now, UTC)
        if self.windows.contains(moment, self.windows_timezone):
            return None
        return self.windows.next_start(moment, self.windows_timezone)

    def file_path(
        self,
        db: Session,
        row: Recording,
        *,
        when: datetime,
        phone_number: str | None,
        name: str | None,
        data_dir: Path,
    ) -> tuple[str, str]:
        """``(path relative to the data dir, file name)`` for ``row``'s file.

        The directory is the day of the call in the recording time zone; a name already
        used there (on disk or by another recording) gets a numeric suffix. A rerun of the
        same job finds its own earlier name again.
        """
        local = when.astimezone(self.timezone)
        directory = f"recordings/{local:%Y/%m/%d}"
        extension = self.output_format.extension
        base = self.template.render(
            when=when,
            timezone=self.timezone,
            phone_number=phone_number,
            id=str(row.id),
            name=name,
        )
        own = row.path

        def taken(candidate: str) -> bool:
            relative = f"{directory}/{candidate}"
            if relative == own:
                return False
            if (data_dir / relative).exists():
                return True
            clash = db.scalar(
                select(Recording.id).where(Recording.path == relative, Recording.id != row.id)
            )
            return clash is not None

        file_name = unique_name(base, extension, taken)
        return f"{directory}/{file_name}", file_name


def policy_from(settings: Settings) -> RecordingPolicy:
    """The policy of the effective settings (parsed values: see ``callvault.config``)."""
    return RecordingPolicy(
        output_format=OutputFormat(
            container=settings["recording.format"],
            codec=recording_codec(settings),
            opus_bitrate=settings["recording.opus_bitrate"],
            opus_bitrate_wideband=settings["recording.opus_bitrate_wideband"],
            opus_complexity=settings["recording.opus_complexity"],
            mp3_bitrate=settings["recording.mp3_bitrate"],
            vorbis_quality=settings["recording.vorbis_quality"],
        ),
        layout=settings["recording.layout"],
        left_channel=settings["recording.left_channel"],
        internal_aors=settings["recording.internal_aors"],
        stitch=settings["recording.stitch"],
        template=settings["recording.filename_template"],
        timezone=settings["recording.timezone"],
        windows=settings["mixer.windows"],
        windows_timezone=settings["mixer.timezone"],
    )
