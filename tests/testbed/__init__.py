"""The local test bed: Kafka (KRaft) and a Kubernetes control plane on 127.0.0.1, used by the tests, the
benchmarks and `make demo` alike.

:mod:`tests.testbed.config` says what it runs and how to change it (environment variables),
:mod:`tests.testbed.bed` runs it, :mod:`tests.testbed.operator_process` runs the operator against it,
:mod:`tests.testbed.second` runs a second Kafka cluster (SCRAM) for tests of several clusters,
:mod:`tests.testbed.node` a node (kubelet, containerd, kube-scheduler) on which the bed's Pods run; the beds
are built on :mod:`tests.testbed.supervisor` (processes and lifecycle), :mod:`tests.testbed.kafka_cluster`
(the Kafka nodes) and :mod:`tests.testbed.state` (state.json); ``python -m tests.testbed --help``.
"""

from .bed import Testbed
from .config import BROKER_IDS, K8S_VERSION, KAFKA_VERSION, KubectlError, PortBusyError, Ports, TestbedError
from .second import SecondKafka

__all__ = [
    "BROKER_IDS",
    "K8S_VERSION",
    "KAFKA_VERSION",
    "KubectlError",
    "PortBusyError",
    "Ports",
    "SecondKafka",
    "Testbed",
    "TestbedError",
]
