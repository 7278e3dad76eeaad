"""What Temporal says of the run under a workflow id, for the gateway and the reconciliation sweep.

Apart from starter/workflows.py: the sweep's activities use it too, and that module imports the
sweep's workflow.
"""

from __future__ import annotations

from temporalio.client import WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode


async def described(handle: WorkflowHandle) -> WorkflowExecutionDescription | None:
    """The latest run under the handle's id; None when Temporal has none (never started, or closed
    past its retention). Any other RPCError (Temporal unavailable...) is raised."""
    try:
        return await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
