"""Answers as Flipkart sends them, for tests that do not need the simulator."""

from __future__ import annotations

import json
from typing import Any

CANARY_TOKEN = "tok-CANARY-7f3a9"
CANARY_SECRET = "secret-CANARY-41c2"
CANARY_OTC = "987123"


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "feName": "Ram",
        "taskId": "123",
        "otc": "123456",
        "expiryTime": 1739382981000,
        "createdAt": 1739382681000,
        "logisticPartner": "eKart",
        "lob": "LARGE",
    }
    base.update(overrides)
    return base


def answer(**fes: dict[str, Any]) -> bytes:
    return json.dumps({"otcDetails": fes}).encode()


def error_body(code: str, message: str = "oops") -> dict[str, str]:
    return {"errorCode": code, "message": message}
