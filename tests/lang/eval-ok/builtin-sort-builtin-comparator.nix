# sort with builtins.lessThan as comparator, on strings and numbers
[ (builtins.sort builtins.lessThan [ 3 1 2 ]) (builtins.sort builtins.lessThan [ "b" "a" "ab" ]) ]
