"""Fixloop parts service: stock per warehouse and the parts reserved for each work order."""
