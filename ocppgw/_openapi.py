"""The OpenAPI 3.1 description of the management API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI"]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _outcome(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}},
    }


_COMMAND_RESPONSES = {
    "200": _outcome("The charger answered: outcome is its status (Accepted, Rejected) or error"),
    "400": _error("The body is not valid; `field` names the culprit"),
    "404": _error("The charge point is not registered"),
    "409": _outcome("The charge point is offline (outcome `offline`)"),
    "504": _outcome("No answer within the call timeout (outcome `timed out`)"),
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ocppgw management API",
        "version": "1",
        "description": "Remote commands and state of the charge points behind an ocppgw.",
    },
    "paths": {
        "/charge-points": {
            "get": {
                "summary": "Registered charge points and whether each is connected",
                "responses": {
                    "200": {
                        "description": "Every registered charge point, sorted by identity",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ChargePoints"}
                            }
                        },
                    }
                },
            }
        },
        "/charge-points/{id}/shadow": {
            "get": {
                "summary": "A charge point's shadow document",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "The shadow (AWS IoT classic-shadow shape)",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "404": _error("The charge point has no shadow yet"),
                },
            }
        },
        "/remote-start": {
            "post": {
                "summary": "Ask a charger to start a transaction and wait for its answer",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/RemoteStart"}}
                    },
                },
                "responses": _COMMAND_RESPONSES,
            }
        },
        "/remote-stop": {
            "post": {
                "summary": "Ask a charger to stop a transaction and wait for its answer",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/RemoteStop"}}
                    },
                },
                "responses": _COMMAND_RESPONSES,
            }
        },
    },
    "components": {
        "schemas": {
            "RemoteStart": {
                "type": "object",
                "required": ["chargePointId", "idTag"],
                "properties": {
                    "chargePointId": {"type": "string", "maxLength": 48},
                    "idTag": {"type": "string", "minLength": 1},
                    "connectorId": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "1.6 connectorId; sent as evseId to 2.0.1 chargers",
                    },
                    "transactionData": {
                        "type": "object",
                        "properties": {"chargingProfile": {"type": "object"}},
                        "additionalProperties": False,
                    },
                },
            },
            "RemoteStop": {
                "type": "object",
                "required": ["chargePointId", "transactionId"],
                "properties": {
                    "chargePointId": {"type": "string", "maxLength": 48},
                    "transactionId": {"type": ["integer", "string"]},
                },
            },
            "Outcome": {
                "type": "object",
                "required": ["outcome"],
                "properties": {
                    "outcome": {
                        "type": "string",
                        "examples": ["Accepted", "Rejected", "error", "offline", "timed out"],
                    },
                    "messageId": {"type": "string"},
                    "action": {"type": "string"},
                    "response": {"type": "object"},
                    "error": {},
                },
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
            },
            "ChargePoints": {
                "type": "object",
                "properties": {
                    "chargePoints": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "chargePointId": {"type": "string"},
                                "registrationTime": {"type": "string"},
                                "connected": {"type": "boolean"},
                            },
                        },
                    }
                },
            },
        }
    },
}
