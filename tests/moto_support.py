"""A local AWS stand-in for the tests: moto in server mode on loopback, and
real boto3 clients that talk to it with dummy keys given to the constructor
(the process environment is left alone)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

__all__ = ["ACCOUNT", "REGION", "aws_client", "moto_server"]

REGION = "eu-west-1"
#: moto's account when the access key is not one it knows.
ACCOUNT = "123456789012"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free 127.0.0.1 port, for the block; yields its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_client(service: str, endpoint: str, **config: Any) -> Any:
    """A real boto3 client for ``service`` at ``endpoint``, with dummy keys."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )
