# * and / bind tighter than + and -
[ (1 + 2 * 3) (10 - 6 / 2) ((1 + 2) * 3) (2 * 3 + 4 * 5) ]
