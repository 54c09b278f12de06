# ++ with a non-list
[ 1 ] ++ 2
