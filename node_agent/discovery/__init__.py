"""Discovery: find the coordinator over mDNS, prove both ways, follow address changes."""
