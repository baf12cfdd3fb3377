"""Fleet-wide self-test route."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.deps import FleetDep, require_operator
from app.selftest import service
from app.selftest.models import FleetSelfTest, FleetSelfTestRequest
from common.http import AUTH_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/v1/selftest",
    tags=["selftest"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)


@router.post(
    "",
    response_model=FleetSelfTest,
    summary="A self-test clip on every node: record, decode, hash, delete; one result per node",
    responses={
        404: {"model": ErrorBody, "description": "Unknown node id"},
        409: {"model": ErrorBody, "description": "No node has joined"},
    },
)
async def selftest(fleet: FleetDep, body: FleetSelfTestRequest | None = None) -> FleetSelfTest:
    return await service.run(fleet, body or FleetSelfTestRequest())
