# == compares lists and sets deeply
[ ([ 1 [ 2 { a = 3; } ] ] == [ 1 [ 2 { a = 3; } ] ]) ({ a.b = 1; } == { a = { b = 1; }; }) ({ a = 1; } == { a = 1; b = 2; }) ([ 1 ] == [ 1 2 ]) ]
