"""``python -m azrestore.cli``: the ``azrestore`` command."""

from .entry import main

main()
