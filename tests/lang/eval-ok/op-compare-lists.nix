# lists compare lexicographically
[ ([ 1 2 ] < [ 1 3 ]) ([ 1 2 ] < [ 1 ]) ([ ] < [ 1 ]) ([ "a" ] < [ "b" ]) ([ 1 [ 2 ] ] < [ 1 [ 3 ] ]) ([ 2 ] >= [ 1 9 ]) ]
