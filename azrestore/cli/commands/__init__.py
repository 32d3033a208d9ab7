"""The commands of ``azrestore``, one module each; :mod:`azrestore.cli.app` registers them."""
