"""The domain core: identifiers, order messages, the order state machine, events and errors.

Everything here is an immutable value. This package imports nothing else of ours, so every other part of
mtrobot can depend on it without pulling in I/O (an import-linter contract in the test run keeps it so).
"""
