"""The test framework (see tests/README.md): what every test stands on.

* ``fixtures``: the staged fixtures and the hooks (``tests/conftest.py`` brings them in).
* ``vms``: the VM factory, and the record of every VM a test boots however it was booted.
* ``skips``: the skips a CI run may have; any other fails it.
* ``waits``: waiting for an event instead of sleeping.
* ``desk``, ``audit``: driving the window; reading the audit log.
* ``fakes``: which fake stands for what.
"""
