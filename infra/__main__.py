"""What ``pulumi up`` runs: read the stack's config, build the Lambda package, declare the stack.

Pulumi runs this file as a script from ``infra/``; the program is the
``infra`` package, so the repository root goes on the import path first.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.lambda_package import build as build_lambda_package
from infra.program import build
from infra.settings import ConfigError, StackSettings
from infra.stack_config import config_values

try:
    settings = StackSettings.from_values(config_values(pulumi.Config()))
except ConfigError as error:
    raise SystemExit(f"stack configuration: {error}") from None
package = settings.lambda_package or str(build_lambda_package())
for name, value in build(settings, pulumi.FileArchive(package)).items():
    pulumi.export(name, value)
