"""The Pulumi program that deploys the production system on AWS.

``__main__.py`` is what ``pulumi up`` runs; ``program.build`` composes the
components of ``infra/components`` from a ``StackSettings`` read from the
stack's configuration (``settings.py``). Everything here is importable and
testable without AWS or the Pulumi CLI (``tests/infra`` uses Pulumi's mocks).
"""
