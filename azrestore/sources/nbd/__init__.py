"""NBD exports as disk sources: a blocking client (:mod:`.client`), a pool of its
connections (:mod:`.pool`) and the source over them (:mod:`.source`)."""

from .source import NbdSource, open_nbd

__all__ = ["NbdSource", "open_nbd"]
