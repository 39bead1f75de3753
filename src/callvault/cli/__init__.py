"""The ``callvault`` command.

``serve`` runs the recorder (SIP, RTP, HTTP and the finalize workers in one process);
the read commands open the same database directly, so they work while the server runs
(SQLite in WAL mode lets readers in beside the one writer). Each group of commands has a
module of its own; this one assembles them.
"""

from __future__ import annotations

import sys

import click

from callvault import __version__
from callvault.cli.calls import calls, recordings
from callvault.cli.common import DATA_HELP, cli_settings
from callvault.cli.keys import keys
from callvault.cli.retention import hold, purge_command
from callvault.cli.settings import settings_group
from callvault.cli.storage import storage, verify
from callvault.cli.users import users

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="callvault")
def main() -> None:
    """callvault: record SIPREC calls, keep them safe, play them back."""


@main.command()
@click.option("--data", metavar="DIR", help=DATA_HELP)
@click.option("--config", metavar="FILE", help="TOML settings file (default DIR/callvault.toml).")
@click.option("--sip", metavar="HOST:PORT", help="SIP UDP+TCP listen address [0.0.0.0:5060].")
@click.option("--http", metavar="HOST:PORT", help="HTTP listen address [127.0.0.1:8080].")
@click.option("--rtp-ports", metavar="LO-HI", help="RTP port range [20000-39999].")
@click.option("--rtp-address", metavar="ADDR", help="Address RTP binds [the SIP address].")
@click.option(
    "--advertise-address", metavar="ADDR", help="Address put in SDP and Contact (for NAT)."
)
def serve(
    data: str | None,
    config: str | None,
    sip: str | None,
    http: str | None,
    rtp_ports: str | None,
    rtp_address: str | None,
    advertise_address: str | None,
) -> None:
    """Run the recorder: SIP/SIPREC, RTP capture, finalize workers and HTTP."""
    settings = cli_settings(
        data,
        config,
        **{
            "sip.listen": sip,
            "http.listen": http,
            "rtp.ports": rtp_ports,
            "rtp.address": rtp_address,
            "sip.advertise_address": advertise_address,
        },
    )
    from callvault.server.app import run

    sys.exit(run(settings))


main.add_command(calls)
main.add_command(recordings)
main.add_command(settings_group)
main.add_command(users)
main.add_command(keys)
main.add_command(purge_command)
main.add_command(hold)
main.add_command(storage)
main.add_command(verify)


if __name__ == "__main__":
    main()
