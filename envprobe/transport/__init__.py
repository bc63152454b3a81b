"""Transports: how probes reach a host. Only this package runs subprocesses or opens SSH sessions."""

from envprobe.transport.base import CommandResult, Source, Transport, TransportError

__all__ = ["CommandResult", "Source", "Transport", "TransportError"]
