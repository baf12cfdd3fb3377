"""chrony's configuration for each role, rendered from ``sync:`` (pure).

The committed ``deploy/chrony/chrony-master.conf`` and ``chrony-client.conf`` are these
renderings of the default settings (tests/test_deploy.py keeps them equal).
"""

from __future__ import annotations

from node_agent.sync.settings import SyncSettings

NTP_PORT = 123
HEADER = (
    "# Rendered by `camfleet sync role {role}` from the agent's sync: settings;\n"
    "# change those and run it again rather than editing this file.\n"
)
COMMON = "rtcsync\ndriftfile /var/lib/chrony/chrony.drift\n"


def _upstream(name: str) -> str:
    kind = "pool" if name.startswith("pool.") or ".pool." in name else "server"
    return f"{kind} {name} iburst\n"


def render_master(sync: SyncSettings) -> str:
    """The master: serves NTP to the fleet's networks; upstream pools when there is
    Internet, its own clock (``local stratum``) when there is not."""
    lines = [
        HEADER.format(role="master"),
        "# The fleet's clock master: serves its clock to the clients. Upstream servers\n"
        "# are used when the field has Internet; without them the rig still agrees with\n"
        "# itself, which is what a synchronized start needs.\n",
        *(_upstream(s) for s in sync.upstream_servers),
        f"local stratum {sync.local_stratum} orphan\n",
        *(f"allow {net}\n" for net in sync.allow),
    ]
    if sync.master_port != NTP_PORT:
        lines.append(f"port {sync.master_port}\n")
    lines += ["makestep 1 3\n", COMMON]
    return "".join(lines)


def render_client(sync: SyncSettings) -> str:
    """A client: prefers the master, polls it often, steps the clock at boot."""
    port = f" port {sync.master_port}" if sync.master_port != NTP_PORT else ""
    return "".join(
        [
            HEADER.format(role="client"),
            f"# Follow the master ({sync.master_cam_id}) closely: poll every "
            f"2^{sync.client_minpoll}..2^{sync.client_maxpoll} s.\n",
            f"server {sync.master_host}{port} iburst prefer "
            f"minpoll {sync.client_minpoll} maxpoll {sync.client_maxpoll}\n",
            "# Step (not slew) an offset over 0.1 s in the first three updates after boot.\n",
            "makestep 0.1 3\n",
            COMMON,
        ]
    )


def render(role: str, sync: SyncSettings) -> str:
    """The configuration of ``role`` (master or client)."""
    if role == "master":
        return render_master(sync)
    if role == "client":
        return render_client(sync)
    raise ValueError(f"no chrony configuration for role {role!r}: master or client")
