"""The AWS Lambda deployable: entry points that compose the processor for AWS.

``lambdas.handlers`` holds the functions' handlers (the message processor on
SQS, remote start and remote stop). Like ``ocppgw`` for the other
deployables, it is a composition root: it reads the environment once, builds
the AWS adapters and hands them to the processor's core, which never imports
it. The Lambda package carries ``ocppj``, ``processor`` and this package.
"""
