"""Admin policy (managed > user > recommended > folder) and folder trust. Pure host-side logic."""

from paddock.policy.effective import (
    MANAGED_FILE,
    RECOMMENDED_FILE,
    EffectivePolicy,
    FolderDecision,
    PolicyError,
    load,
)
from paddock.policy.schema import EgressGrant, PolicyFile
from paddock.policy.trust import TrustStore, behaviour_files

__all__ = [
    "MANAGED_FILE",
    "RECOMMENDED_FILE",
    "EffectivePolicy",
    "EgressGrant",
    "FolderDecision",
    "PolicyError",
    "PolicyFile",
    "TrustStore",
    "behaviour_files",
    "load",
]
