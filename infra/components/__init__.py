"""The stack's parts, one ComponentResource each, composed by ``infra.program``."""

from .data import Data, DataArgs
from .gateway_service import GatewayService, GatewayServiceArgs
from .iot import Iot, IotArgs
from .network import Network, NetworkArgs
from .observability import LogGroups, LogGroupsArgs, Monitoring, MonitoringArgs
from .processing import Processing, ProcessingArgs

__all__ = [
    "Data",
    "DataArgs",
    "GatewayService",
    "GatewayServiceArgs",
    "Iot",
    "IotArgs",
    "LogGroups",
    "LogGroupsArgs",
    "Monitoring",
    "MonitoringArgs",
    "Network",
    "NetworkArgs",
    "Processing",
    "ProcessingArgs",
]
