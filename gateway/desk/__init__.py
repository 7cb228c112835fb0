"""The hall desk (窗口): staff verify e-licenses, auditors inspect the chain (SPEC 0, 4.4-4.6).

Served by every node at ``/desk/``; see ``docs/desk.md``. ``gateway.desk.setup.setup_desk``
mounts it. This package file imports nothing, so the CLI can use the account modules
without loading the HTTP stack.
"""
