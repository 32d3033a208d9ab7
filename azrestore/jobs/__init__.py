"""Use cases: the upload, bulk, verify and restore jobs that the command line and library
users call, with credentials and settings as arguments (never from the environment)."""
