"""Discovery: the coordinator advertised over mDNS, and the mutual-proof handshake."""
