"""A node's settings file and its shutdown, relayed to the node with the operator's token."""
