"""Admin policy (managed > user > recommended > folder) and folder trust. Pure host-side logic."""

from paddock.policy.effective import (
    MANAGED_FILE,
    RECOMMENDED_FILE,
    EffectivePolicy,
    FolderDecision,
    PolicyError,
)
from paddock.policy.hosts import NO_VIRTUALISATION, SandboxHost
from paddock.policy.merging import load
from paddock.policy.models import Endpoint, ModelChoice, ModelRefused
from paddock.policy.schema import EgressGrant, ModelEndpoint, PolicyFile, credential_warnings
from paddock.policy.trust import TrustStore, behaviour_files

__all__ = [
    "MANAGED_FILE",
    "NO_VIRTUALISATION",
    "RECOMMENDED_FILE",
    "EffectivePolicy",
    "EgressGrant",
    "Endpoint",
    "FolderDecision",
    "ModelChoice",
    "ModelEndpoint",
    "ModelRefused",
    "PolicyError",
    "PolicyFile",
    "SandboxHost",
    "TrustStore",
    "behaviour_files",
    "credential_warnings",
    "load",
]
