"""Admin policy (managed > user > recommended > folder) and folder trust. Pure host-side logic."""

from paddock.policy.effective import (
    MANAGED_FILE,
    RECOMMENDED_FILE,
    EffectivePolicy,
    FolderDecision,
    PolicyError,
    load,
)
from paddock.policy.models import Endpoint, ModelChoice, ModelRefused
from paddock.policy.schema import EgressGrant, ModelEndpoint, PolicyFile
from paddock.policy.trust import TrustStore, behaviour_files

__all__ = [
    "MANAGED_FILE",
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
    "TrustStore",
    "behaviour_files",
    "load",
]
