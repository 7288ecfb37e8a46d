"""OTLP export of audit records with the OpenTelemetry SDK: every record as a log
record, and turns and tool calls also as spans of the session's trace.

Endpoint and headers come from the admin's policy. The SDK's batch processors
export on their own thread with bounded queues and timeouts: an unreachable
collector drops exports after its retries, never blocks the caller.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from paddock import __version__
from paddock.audit.trail import HIGH_SEVERITY, TOOL_CALL, TOOL_RESULT, TURN, Exporter

EXPORT_TIMEOUT_S = 5.0


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = [str(v) for v in value]
    elif value is None:
        return
    elif isinstance(value, (str, bool, int, float)):
        out[prefix] = value
    else:
        out[prefix] = str(value)


class OtlpExporter(Exporter):
    def __init__(self, endpoint: str, headers: dict[str, str] | None = None) -> None:
        insecure = urlsplit(endpoint).scheme == "http"  # the exporter itself keeps only the URL's host:port
        resource = Resource.create({"service.name": "paddock", "service.version": __version__})
        self._logs = LoggerProvider(resource=resource)
        self._logs.add_log_record_processor(
            BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=endpoint, insecure=insecure, headers=headers or {}, timeout=EXPORT_TIMEOUT_S),
                schedule_delay_millis=200,
                export_timeout_millis=int(EXPORT_TIMEOUT_S * 1000),
            )
        )
        self._traces = TracerProvider(resource=resource)
        self._traces.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint, insecure=insecure, headers=headers or {}, timeout=EXPORT_TIMEOUT_S),
                schedule_delay_millis=200,
                export_timeout_millis=int(EXPORT_TIMEOUT_S * 1000),
            )
        )
        self._logger = self._logs.get_logger("paddock.audit", __version__)
        self._tracer = self._traces.get_tracer("paddock.audit", __version__)
        self._open_spans: dict[str, Any] = {}

    def export(self, record: dict[str, Any]) -> None:
        trace_id = int(record["session_id"], 16)
        span_id = int(record["span_id"], 16)
        parent = record.get("parent_span_id")
        ctx_span = NonRecordingSpan(
            SpanContext(trace_id=trace_id, span_id=span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        )
        attrs: dict[str, Any] = {}
        _flatten("", record.get("attributes", {}), attrs)
        attrs.update({"paddock.audit.seq": record["seq"], "paddock.audit.hash": record["hash"]})
        if parent:
            attrs["paddock.parent_span_id"] = parent
        ts = int(float(record["time_unix"]) * 1e9)
        high = record["kind"] in HIGH_SEVERITY
        self._logger.emit(
            timestamp=ts,
            severity_number=SeverityNumber.ERROR if high else SeverityNumber.INFO,
            severity_text="HIGH" if high else "INFO",
            context=set_span_in_context(ctx_span),
            body=record["kind"],
            event_name=f"paddock.{record['kind']}",
            attributes=attrs,
        )
        self._spans(record, ts, attrs)

    def _spans(self, record: dict[str, Any], ts: int, attrs: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind in (TURN, TOOL_CALL):
            parent_id = record.get("parent_span_id")
            parent_ctx = None
            if parent_id:
                parent_ctx = set_span_in_context(
                    NonRecordingSpan(
                        SpanContext(
                            trace_id=int(record["session_id"], 16),
                            span_id=int(parent_id, 16),
                            is_remote=False,
                            trace_flags=TraceFlags(TraceFlags.SAMPLED),
                        )
                    )
                )
            name = "paddock.turn" if kind == TURN else f"paddock.tool {attrs.get('gen_ai.tool.name', '')}"
            span = self._tracer.start_span(name, context=parent_ctx, start_time=ts, attributes=attrs)
            if kind == TURN:
                span.end(end_time=ts)
            else:
                self._open_spans[record["span_id"]] = span
        elif kind == TOOL_RESULT:
            span = self._open_spans.pop(str(record.get("parent_span_id")), None)
            if span is not None:
                span.set_attributes(attrs)
                span.end(end_time=ts)

    def flush(self) -> None:
        self._logs.force_flush(int(EXPORT_TIMEOUT_S * 1000))

    def shutdown(self) -> None:
        for span in self._open_spans.values():
            span.end()
        self._open_spans.clear()
        self._traces.shutdown()
        self._logs.shutdown()
