"""Lineage: the graph the catalog's records already imply, walked on demand."""
