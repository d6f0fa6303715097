"""The local test bed: Kafka (KRaft) and a Kubernetes control plane on 127.0.0.1.

See :mod:`tests.testbed.bed` for the environment variables and ``python -m tests.testbed --help``.
"""

from .bed import BROKER_IDS, KubectlError, PortBusyError, Ports, Testbed, TestbedError

__all__ = ["BROKER_IDS", "KubectlError", "PortBusyError", "Ports", "Testbed", "TestbedError"]
