"""The node's web console: the department's staff do their daily work in a browser.

A front door of the node like node/rpc/, never a new party: it authenticates a person
(password and TOTP, node/console/accounts.py), names them as the actor
``department-staff/<department>.<person>`` and calls the same audited domain services as
the gRPC servicers. It never talks to the coordinator. See node/console/README-dev.md.
"""
