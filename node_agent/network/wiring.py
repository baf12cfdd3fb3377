"""Build the network manager from the agent's settings, and the status it shows."""

from __future__ import annotations

from node_agent.commands import CommandRunner
from node_agent.network.nmcli import Nmcli
from node_agent.network.reader import CachedNetwork
from node_agent.network.schemas import NetworkStatus
from node_agent.network.secrets import NetworkSecrets, SecretsError, load_secrets
from node_agent.network.service import NetworkService, plan_config
from node_agent.settings import AgentSettings


def master_cam_id(settings: AgentSettings) -> str:
    """The camera that raises the rig's AP: network.master_cam_id, else sync.master_cam_id."""
    return settings.network.master_cam_id or settings.sync.master_cam_id


def build_network(settings: AgentSettings, dry_run: bool = False) -> NetworkService | None:
    """The manager when ``network.manage`` (None: the network is never touched).

    A secrets file that is missing, readable by others or invalid does not stop the agent:
    the manager does not start and its status says why."""
    net = settings.network
    if not net.manage:
        return None
    secrets: NetworkSecrets | None = None
    problem = None
    if net.secrets_file is None:
        problem = "network.manage is on but network.secrets_file is not set (it holds ap_psk)"
    else:
        try:
            secrets = load_secrets(net.secrets_file)
        except SecretsError as err:
            problem = str(err)
    runner = CommandRunner(dry_run=dry_run, journal_size=20, quiet=True)
    nmcli = Nmcli(runner, net.interface, net.nmcli_path, net.command_timeout_s)
    cfg = plan_config(net, settings.cam_id, master_cam_id(settings))
    return NetworkService(net, cfg, nmcli, secrets, problem)


def network_status(cached: CachedNetwork, manager: NetworkService | None) -> NetworkStatus:
    """What the status shows: the reader's mode, with the manager's link and state on top."""
    read = cached.read()
    return manager.overlay(read) if manager is not None else read
