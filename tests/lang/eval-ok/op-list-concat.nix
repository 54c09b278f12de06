# ++ concatenates lists and is right-associative
[ ([ 1 ] ++ [ 2 3 ] ++ [ ] ++ [ [ 4 ] ]) ([ ] ++ [ ]) ]
