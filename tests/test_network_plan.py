"""The mesh / AP plan: a table of single steps, and properties over simulated fields."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node_agent.network.plan import (
    Action,
    ActionKind,
    Link,
    Observation,
    Phase,
    PlanConfig,
    PlanState,
    Seen,
    step,
)

MESH = "FieldMesh"
MASTER_AP = "SOCCER_CAM_C"
OWN_AP = "SOCCER_CAM_L"


def cfg(master: bool = False, networks: tuple[str, ...] = (MESH,)) -> PlanConfig:
    return PlanConfig(
        networks=networks,
        own_ap=MASTER_AP if master else OWN_AP,
        master_ap=MASTER_AP,
        is_master=master,
        join_timeout_s=30,
        client_timeout_s=60,
        mesh_retry_s=120,
        probe_timeout_s=15,
    )


def seen(*ssids: str) -> tuple[Seen, ...]:
    return tuple(Seen(s, 50) for s in ssids)


ON_MESH = Link(MESH, address="192.168.50.3/24")
HOSTING_MASTER = Link(MASTER_AP, hosting=True)
HOSTING_OWN = Link(OWN_AP, hosting=True)
ON_MASTER_AP = Link(MASTER_AP)
DOWN = Link()

BOOT = PlanState(since=0.0)
RESEEK = PlanState(since=100.0, boot=False)
MESH_PHASE = PlanState(phase=Phase.mesh, since=0.0, boot=False)
CLIENT = PlanState(phase=Phase.ap_client, since=100.0, boot=False, last_look=100.0)
HOST = PlanState(phase=Phase.ap_host, since=100.0, boot=False, last_look=100.0)
PROBE = PlanState(phase=Phase.probing, since=300.0, boot=False, last_look=300.0)

# (name, master?, state, observation, expected action kind, its SSID, phase after)
ROWS: list[tuple[str, bool | PlanConfig, PlanState, Observation, ActionKind, str | None, Phase]] = [
    (
        "boot: first a scan",
        True,
        PlanState(),
        Observation(0.0),
        ActionKind.scan,
        None,
        Phase.seeking,
    ),
    (
        "boot: join a configured network the scan shows",
        True,
        BOOT,
        Observation(5.0, seen=seen(MESH, "Cafe"), seen_at=4.0),
        ActionKind.join_mesh,
        MESH,
        Phase.seeking,
    ),
    (
        "boot: a stale scan is taken again",
        True,
        BOOT,
        Observation(25.0, seen=(), seen_at=4.0),
        ActionKind.scan,
        None,
        Phase.seeking,
    ),
    (
        "boot: a fresh empty scan is waited on",
        True,
        BOOT,
        Observation(25.0, seen=seen("Cafe"), seen_at=24.0),
        ActionKind.wait,
        None,
        Phase.seeking,
    ),
    (
        "master: no network in join_timeout_s raises its AP",
        True,
        BOOT,
        Observation(30.0, seen=(), seen_at=29.0),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "master: past the time-out the AP wins over a failing mesh",
        True,
        PlanState(since=0.0, tried=MESH, tried_at=29.0),
        Observation(31.0, seen=seen(MESH), seen_at=30.5),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "a failed join is not tried again within the gap",
        True,
        PlanState(since=0.0, tried=MESH, tried_at=10.0),
        Observation(12.0, seen=seen(MESH), seen_at=11.0),
        ActionKind.wait,
        None,
        Phase.seeking,
    ),
    (
        "... and is tried again after it",
        True,
        PlanState(since=0.0, tried=MESH, tried_at=10.0),
        Observation(20.5, seen=seen(MESH), seen_at=20.0),
        ActionKind.join_mesh,
        MESH,
        Phase.seeking,
    ),
    (
        "client at boot gives the mesh join_timeout_s before the master's AP",
        False,
        BOOT,
        Observation(10.0, seen=seen(MASTER_AP), seen_at=9.0),
        ActionKind.wait,
        None,
        Phase.seeking,
    ),
    (
        "client at boot joins the master's AP after join_timeout_s",
        False,
        BOOT,
        Observation(30.0, seen=seen(MASTER_AP), seen_at=29.5),
        ActionKind.join_ap,
        MASTER_AP,
        Phase.seeking,
    ),
    (
        "client: neither in client_timeout_s raises its own AP",
        False,
        BOOT,
        Observation(60.0, seen=(), seen_at=59.0),
        ActionKind.raise_ap,
        OWN_AP,
        Phase.ap_host,
    ),
    (
        "client: just before client_timeout_s it waits",
        False,
        BOOT,
        Observation(59.0, seen=(), seen_at=58.0),
        ActionKind.wait,
        None,
        Phase.seeking,
    ),
    (
        "client seeking again joins the master's AP at once",
        False,
        RESEEK,
        Observation(101.0, seen=seen(MASTER_AP), seen_at=100.5),
        ActionKind.join_ap,
        MASTER_AP,
        Phase.seeking,
    ),
    (
        "client seeking again prefers the mesh",
        False,
        RESEEK,
        Observation(101.0, seen=seen(MASTER_AP, MESH), seen_at=100.5),
        ActionKind.join_mesh,
        MESH,
        Phase.seeking,
    ),
    (
        "a mesh link that came up is the mesh phase",
        False,
        RESEEK,
        Observation(102.0, link=ON_MESH),
        ActionKind.wait,
        None,
        Phase.mesh,
    ),
    (
        "a network the settings do not name is no link",
        True,
        BOOT,
        Observation(31.0, link=Link("Cafe"), seen=(), seen_at=30.0),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "losing the mesh is seeking again",
        True,
        MESH_PHASE,
        Observation(500.0, link=DOWN),
        ActionKind.scan,
        None,
        Phase.seeking,
    ),
    (
        "on the mesh: nothing to do",
        True,
        MESH_PHASE,
        Observation(500.0, link=ON_MESH),
        ActionKind.wait,
        None,
        Phase.mesh,
    ),
    (
        "ap_client: waits until the mesh retry",
        False,
        CLIENT,
        Observation(219.0, link=ON_MASTER_AP),
        ActionKind.wait,
        None,
        Phase.ap_client,
    ),
    (
        "ap_client: scans every mesh_retry_s",
        False,
        CLIENT,
        Observation(220.0, link=ON_MASTER_AP),
        ActionKind.scan,
        None,
        Phase.ap_client,
    ),
    (
        "ap_client: joins the mesh that is back",
        False,
        PlanState(phase=Phase.ap_client, since=100.0, boot=False, last_look=220.0),
        Observation(221.0, link=ON_MASTER_AP, seen=seen(MESH, MASTER_AP), seen_at=220.5),
        ActionKind.join_mesh,
        MESH,
        Phase.ap_client,
    ),
    (
        "ap_client: a scan from before the retry does not count",
        False,
        PlanState(phase=Phase.ap_client, since=100.0, boot=False, last_look=220.0),
        Observation(221.0, link=ON_MASTER_AP, seen=seen(MESH), seen_at=219.0),
        ActionKind.wait,
        None,
        Phase.ap_client,
    ),
    (
        "ap_client: losing the master's AP is seeking again",
        False,
        CLIENT,
        Observation(150.0, link=DOWN),
        ActionKind.scan,
        None,
        Phase.seeking,
    ),
    (
        "ap_host: hosting, until the mesh retry",
        True,
        HOST,
        Observation(219.0, link=HOSTING_MASTER),
        ActionKind.wait,
        None,
        Phase.ap_host,
    ),
    (
        "ap_host: takes the AP down to look for the mesh",
        True,
        HOST,
        Observation(220.0, link=HOSTING_MASTER),
        ActionKind.leave_ap,
        MASTER_AP,
        Phase.probing,
    ),
    (
        "ap_host: a master with no network to find never probes",
        cfg(True, networks=()),
        HOST,
        Observation(10_000.0, link=HOSTING_MASTER),
        ActionKind.wait,
        None,
        Phase.ap_host,
    ),
    (
        "ap_host: a client hosting probes for the master's AP",
        False,
        PlanState(phase=Phase.ap_host, since=100.0, boot=False, last_look=100.0),
        Observation(220.0, link=HOSTING_OWN),
        ActionKind.leave_ap,
        OWN_AP,
        Phase.probing,
    ),
    (
        "ap_host: an AP that did not come up is raised again after the gap",
        True,
        PlanState(phase=Phase.ap_host, since=100.0, tried=MASTER_AP, tried_at=100.0),
        Observation(111.0, link=DOWN),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "... not within it",
        True,
        PlanState(phase=Phase.ap_host, since=100.0, tried=MASTER_AP, tried_at=100.0),
        Observation(105.0, link=DOWN),
        ActionKind.wait,
        None,
        Phase.ap_host,
    ),
    (
        "probing: first a scan taken after the AP went down",
        True,
        PROBE,
        Observation(301.0, seen=seen(MESH), seen_at=299.0),
        ActionKind.scan,
        None,
        Phase.probing,
    ),
    (
        "probing: the mesh is back",
        True,
        PROBE,
        Observation(303.0, seen=seen(MESH), seen_at=302.0),
        ActionKind.join_mesh,
        MESH,
        Phase.probing,
    ),
    (
        "probing: the mesh join failed, the AP goes up again",
        True,
        PlanState(phase=Phase.probing, since=300.0, boot=False, tried=MESH, tried_at=303.0),
        Observation(304.0, seen=seen(MESH), seen_at=302.0),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "probing: nothing better, the AP goes up again",
        True,
        PROBE,
        Observation(303.0, seen=(), seen_at=302.0),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "probing: a client finds the master's AP",
        False,
        PROBE,
        Observation(303.0, seen=seen(MASTER_AP), seen_at=302.0),
        ActionKind.join_ap,
        MASTER_AP,
        Phase.probing,
    ),
    (
        "probing: too long, the AP goes up again",
        True,
        PROBE,
        Observation(315.0, seen=(), seen_at=299.0),
        ActionKind.raise_ap,
        MASTER_AP,
        Phase.ap_host,
    ),
    (
        "an AP found up after a restart is adopted",
        True,
        PlanState(),
        Observation(0.0, link=HOSTING_MASTER),
        ActionKind.wait,
        None,
        Phase.ap_host,
    ),
    (
        "joining the master's AP worked: ap_client",
        False,
        RESEEK,
        Observation(102.0, link=ON_MASTER_AP),
        ActionKind.wait,
        None,
        Phase.ap_client,
    ),
]


@pytest.mark.parametrize(
    ("master", "state", "obs", "kind", "ssid", "phase"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_one_step(
    master: bool | PlanConfig,
    state: PlanState,
    obs: Observation,
    kind: ActionKind,
    ssid: str | None,
    phase: Phase,
) -> None:
    config = master if isinstance(master, PlanConfig) else cfg(master)
    new, action = step(state, obs, config)
    assert (action.kind, action.ssid, new.phase) == (kind, ssid, phase), action.reason
    assert action.reason  # every action says why (the status shows it)


def test_a_step_never_reads_a_clock_the_same_inputs_give_the_same_answer() -> None:
    obs = Observation(42.0, seen=seen(MESH), seen_at=41.0)
    assert step(BOOT, obs, cfg()) == step(BOOT, obs, cfg())


# -- properties over simulated fields ---------------------------------------------------------


@dataclass
class SimNode:
    """One node: its plan and its radio (the simulation's stand-in for nmcli)."""

    name: str
    cfg: PlanConfig
    state: PlanState = field(default_factory=PlanState)
    link: Link = field(default_factory=Link)
    seen: tuple[Seen, ...] = ()
    seen_at: float | None = None
    down_since: float | None = 0.0  # reachable by no one since then (None: reachable)
    worst_down_s: float = 0.0
    powered: bool = True

    def power(self, on: bool, now: float) -> None:
        """Off: no radio; on again: a boot."""
        if on and not self.powered:
            self.state, self.seen, self.seen_at, self.down_since = PlanState(), (), None, now
        if not on:
            self.link, self.down_since = Link(), None
        self.powered = on

    @property
    def hosting(self) -> bool:
        return self.link.hosting


@dataclass
class Field:
    """The air: whether the mesh is up, and the nodes (whose APs the others see)."""

    nodes: list[SimNode]
    mesh_up: bool = False

    def visible(self, me: SimNode) -> tuple[Seen, ...]:
        out = [Seen(MESH, 70)] if self.mesh_up else []
        out += [Seen(n.link.ssid or "", 60) for n in self.nodes if n is not me and n.hosting]
        return tuple(out)

    def hosted(self, ssid: str, me: SimNode) -> bool:
        return any(n.hosting and n.link.ssid == ssid for n in self.nodes if n is not me)

    def refresh(self, node: SimNode) -> None:
        """A link whose network went away is down (the radio notices)."""
        link = node.link
        if link.ssid is None or link.hosting:
            return
        if (link.ssid == MESH and not self.mesh_up) or (
            link.ssid != MESH and not self.hosted(link.ssid, node)
        ):
            node.link = Link()

    def carry_out(self, node: SimNode, action: Action, now: float) -> None:
        ssid = action.ssid or ""
        if action.kind == ActionKind.scan:
            if not node.hosting:  # NetworkManager refuses to scan in AP mode
                node.seen, node.seen_at = self.visible(node), now
        elif action.kind == ActionKind.join_mesh:
            node.link = Link(MESH) if self.mesh_up and ssid == MESH else Link()
        elif action.kind == ActionKind.join_ap:
            node.link = Link(ssid) if self.hosted(ssid, node) else Link()
        elif action.kind == ActionKind.raise_ap:
            node.link = Link(ssid, hosting=True)
        elif action.kind == ActionKind.leave_ap:
            node.link = Link()
            node.seen_at = None

    def tick(self, node: SimNode, now: float) -> None:
        """What NetworkService.tick does: step until the plan says wait."""
        for i in range(6):
            t = now + 0.01 * i
            self.refresh(node)
            obs = Observation(t, node.link, node.seen, node.seen_at)
            node.state, action = step(node.state, obs, node.cfg)
            if action.kind == ActionKind.wait:
                break
            self.carry_out(node, action, t)
        self.refresh(node)

    def account(self, now: float) -> None:
        for n in self.nodes:
            if not n.powered:
                continue
            self.refresh(n)
            if n.link.ssid is None:
                if n.down_since is None:
                    n.down_since = now
                n.worst_down_s = max(n.worst_down_s, now - n.down_since)
            else:
                n.down_since = None


def fleet() -> Field:
    return Field(
        [
            SimNode("CAM_C", cfg(master=True)),
            SimNode("CAM_L", cfg()),
            SimNode("CAM_R", PlanConfig(**{**cfg().__dict__, "own_ap": "SOCCER_CAM_R"})),
        ]
    )


def run(f: Field, until: float, now: float, rng: random.Random, max_dt: float) -> float:
    while now < until:
        now += rng.uniform(0.5, max_dt)
        order = list(f.nodes)
        rng.shuffle(order)
        for n in order:
            if n.powered:
                f.tick(n, now)
        f.account(now)
    return now


MAX_DT = 5.0
SLACK = 2 * MAX_DT + 1
# (how long, the mesh up?, the master powered?)
segments = st.lists(
    st.tuples(st.floats(min_value=0, max_value=300), st.booleans(), st.booleans()),
    min_size=1,
    max_size=8,
)


def play(f: Field, plan: list[tuple[float, bool, bool]], rng: random.Random) -> float:
    now = 0.0
    for duration, mesh_up, master_on in plan:
        f.mesh_up = mesh_up
        f.nodes[0].power(master_on, now)
        now = run(f, now + duration, now, rng, MAX_DT)
    return now


@settings(max_examples=40, deadline=None)
@given(segments, st.randoms(use_true_random=False))
def test_no_node_is_unreachable_longer_than_its_time_outs(
    plan: list[tuple[float, bool, bool]], rng: random.Random
) -> None:
    f = fleet()
    play(f, plan, rng)
    master, *clients = f.nodes
    c = master.cfg
    assert master.worst_down_s <= c.join_timeout_s + SLACK
    for n in clients:
        assert n.worst_down_s <= n.cfg.client_timeout_s + SLACK, n.name


@settings(max_examples=40, deadline=None)
@given(segments, st.randoms(use_true_random=False))
def test_without_a_mesh_the_master_hosts_and_the_others_join_it(
    plan: list[tuple[float, bool, bool]], rng: random.Random
) -> None:
    f = fleet()
    now = play(f, plan, rng)
    f.mesh_up = False
    f.nodes[0].power(True, now)
    c = f.nodes[1].cfg
    # the longest way there: lose the mesh, raise an own AP first, probe once
    now = run(
        f, now + c.client_timeout_s + c.mesh_retry_s + c.probe_timeout_s + SLACK, now, rng, MAX_DT
    )
    master, *clients = f.nodes
    assert master.link == Link(MASTER_AP, hosting=True)
    for n in clients:
        assert n.link.ssid == MASTER_AP and not n.link.hosting, (n.name, n.link, n.state)


@settings(max_examples=40, deadline=None)
@given(segments, st.randoms(use_true_random=False))
def test_everyone_returns_to_the_mesh_when_it_is_back(
    plan: list[tuple[float, bool, bool]], rng: random.Random
) -> None:
    f = fleet()
    now = play(f, plan, rng)
    f.mesh_up = True
    f.nodes[0].power(True, now)
    c = f.nodes[0].cfg
    now = run(f, now + c.mesh_retry_s + c.join_timeout_s + SLACK, now, rng, MAX_DT)
    for n in f.nodes:
        assert n.link.ssid == MESH, (n.name, n.link, n.state)
        assert n.state.phase == Phase.mesh


def test_a_boot_with_no_mesh_goes_master_ap_then_clients_then_mesh() -> None:
    """The sequence the three-agent test drives, step by step in simulated time."""
    f = fleet()
    rng = random.Random(1)
    now = run(f, 29.0, 0.0, rng, 1.0)
    assert all(n.link.ssid is None for n in f.nodes)  # still trying the mesh
    now = run(f, 32.0, now, rng, 1.0)
    assert f.nodes[0].link == Link(MASTER_AP, hosting=True)
    now = run(f, 45.0, now, rng, 1.0)
    assert [n.link.ssid for n in f.nodes[1:]] == [MASTER_AP, MASTER_AP]
    f.mesh_up = True
    now = run(f, now + 125.0, now, rng, 1.0)
    assert [n.link.ssid for n in f.nodes] == [MESH, MESH, MESH]
