"""What each fake in the suite stands for (everything else in a test is the real component:
the VM, the guest agent, the gateway, the keyring, policy, the audit log).

* ``tests.fakes.messages_api.MessagesAPI``: the model service (Anthropic Messages API) on
  loopback, scripted per test; the SDK reaches it through ``ANTHROPIC_BASE_URL``.
* ``tests.fakes.chat_completions.ChatCompletionsAPI``: an OpenAI-compatible model endpoint
  (OpenAI, Azure OpenAI, vLLM, Ollama) on loopback, scripted the same way.
* ``tests.fakes.loopback``: the plumbing both share (threaded HTTP server, scripted steps).
* ``tests.egress.upstream.Upstream``: any site a grant names (HTTPS on loopback with a throwaway
  CA); records every request, so a test can prove a refused one never arrived.
* ``tests.egress.lying_dns``: a lying DNS server (rebinding), as a mitmproxy script in the gateway.
* ``tests.egress.raw``: a guest program speaking to the real gateway byte by byte (no VM).
* ``tests.otlp_receiver.OtlpReceiver``: the organisation's OpenTelemetry collector (OTLP/gRPC).
* ``tests.remote.conftest.SshHost``: a sandbox host: a real OpenSSH server on loopback
  (scripts/remote_test_host.sh) logging into two local accounts.
"""

from __future__ import annotations

from tests.egress.upstream import Upstream
from tests.fakes.chat_completions import ChatCompletionsAPI
from tests.fakes.loopback import Reply, Step
from tests.fakes.messages_api import MessagesAPI, text, tool
from tests.otlp_receiver import OtlpReceiver

__all__ = ["ChatCompletionsAPI", "MessagesAPI", "OtlpReceiver", "Reply", "Step", "Upstream", "text", "tool"]
