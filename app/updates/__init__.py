"""Fleet updates: one node at a time, never a recording node, stopping at the first failure."""
