"""Opt-in benchmarks of the gateway: a simulated charger fleet and a memory probe.

Nothing here runs in the normal test suite. Each tool starts the embedded
system (``ocppgw dev``) in a subprocess of its own, so the figures it prints
are the server's alone and not mixed with the load generator's work. See
``bench/README.md`` for the commands and the figures measured so far.
"""
