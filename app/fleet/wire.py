"""The agent's wire contract, as the coordinator sees it: the one place ``app`` imports it.

Everything the coordinator sends to or reads from a node is one of these models; they
are defined once, in the agent package, so a change in the contract is a type error here.
"""

from node_agent.naming import manifest_name
from node_agent.schemas import (
    NODE_ID_PATTERN,
    SESSION_ID_PATTERN,
    ConfirmRequest,
    ConfirmResult,
    DeleteResult,
    DiskLevel,
    JoinChallenge,
    JoinChallengeRequest,
    JoinRequest,
    JoinResponse,
    LockViewRequest,
    LockViewResult,
    Manifest,
    NodeId,
    NodeStatus,
    Position,
    RecorderState,
    RecordingEntry,
    RecordingList,
    SelfTestRequest,
    SelfTestResult,
    SessionId,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
)
from node_agent.timelapse.schemas import TimelapseStartRequest, TimelapseStatus

__all__ = [
    "NODE_ID_PATTERN",
    "SESSION_ID_PATTERN",
    "ConfirmRequest",
    "ConfirmResult",
    "DeleteResult",
    "DiskLevel",
    "JoinChallenge",
    "JoinChallengeRequest",
    "JoinRequest",
    "JoinResponse",
    "LockViewRequest",
    "LockViewResult",
    "Manifest",
    "NodeId",
    "NodeStatus",
    "Position",
    "RecorderState",
    "RecordingEntry",
    "RecordingList",
    "SelfTestRequest",
    "SelfTestResult",
    "SessionId",
    "StartRequest",
    "StartResult",
    "StopRequest",
    "StopResult",
    "TimelapseStartRequest",
    "TimelapseStatus",
    "manifest_name",
]
