"""The project's own YouSign API v3 emulator: a real HTTP server on loopback for development and tests.

async with running_emulator(EmulatorSettings(api_key="test-key")) as emulator:
    emulator.api_base_url  # "http://127.0.0.1:<port>/v3" (YOUSIGN_BASE_URL of a client)
    emulator.public_url  # signing pages (/sign/{signer_id}), /mailbox, index
    emulator.state  # records and control methods: sign_signer, decline_signer, add_fault, ...

Or `python -m yousign_emulator` with EMULATOR_* variables. The control methods are mirrored over HTTP
under /_emulator/ (loopback only); control.py lists the routes.
"""

from .errors import ApiError
from .faults import Fault
from .models import RecordedRequest, RequestStamp, WebhookDelivery, WebhookEvent
from .pdfs import sample_pdf
from .server import Emulator, InProcessServer, build_app, running_emulator
from .settings import EmulatorSettings
from .state import EmulatorState
from .webhooks import signature_header

__all__ = [
    "ApiError",
    "Emulator",
    "EmulatorSettings",
    "EmulatorState",
    "Fault",
    "InProcessServer",
    "RecordedRequest",
    "RequestStamp",
    "WebhookDelivery",
    "WebhookEvent",
    "build_app",
    "running_emulator",
    "sample_pdf",
    "signature_header",
]
