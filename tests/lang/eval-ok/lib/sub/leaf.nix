# helper: leaf of the import chain
{ name = "leaf"; depth = 1; }
