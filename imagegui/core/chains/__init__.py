"""The chain graph (networkx) and what it says: problems, state, layout."""
