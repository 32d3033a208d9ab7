"""Shared helpers for the Resource Manager simulator's contract tests (tests/e2e/emulator/arm/).

The simulator is driven only through the real azure-mgmt-compute / azure-mgmt-network aio
clients (plus azure-storage-blob for the page writes a disk upload makes).
"""
