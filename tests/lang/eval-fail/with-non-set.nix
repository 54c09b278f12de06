# with on a non-set is an error when a lookup falls through
with 1; a
