"""The session engine: composes VM, guest, policy, model and audit. No Qt here."""
