"""A real OTLP receiver on loopback: the collector's gRPC services from opentelemetry-proto.

It accepts what an OpenTelemetry collector would (logs and traces over
OTLP/gRPC) and keeps the decoded requests for the test to inspect. It can be
stopped and started again on the same port to play a collector going down.
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class OtlpReceiver:
    def __init__(self, port: int = 0) -> None:
        self.logs: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self.port = port
        self._server: grpc.Server | None = None

    def start(self) -> OtlpReceiver:
        receiver = self

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep_headers(context)
                with receiver._lock:
                    for rl in request.resource_logs:
                        for sl in rl.scope_logs:
                            for r in sl.log_records:
                                receiver.logs.append({
                                    "body": r.body.string_value, "trace_id": r.trace_id.hex(),
                                    "severity": r.severity_text, "severity_number": r.severity_number,
                                    "span_id": r.span_id.hex(),
                                    "attributes": {a.key: _value(a.value) for a in r.attributes}})  # fmt: skip
                return logs_service_pb2.ExportLogsServiceResponse()

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep_headers(context)
                with receiver._lock:
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                receiver.spans.append({
                                    "name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                                    "parent_span_id": s.parent_span_id.hex(),
                                    "attributes": {a.key: _value(a.value) for a in s.attributes}})  # fmt: skip
                return trace_service_pb2.ExportTraceServiceResponse()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def _keep_headers(self, context: Any) -> None:
        with self._lock:
            self.headers.append({k: v for k, v in context.invocation_metadata()})

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None
