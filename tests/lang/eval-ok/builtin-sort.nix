# sort with a comparator, numbers and strings
[ (builtins.sort (a: b: a < b) [ 3 1 2 ]) (builtins.sort (a: b: a > b) [ 3 1 2 ]) (builtins.sort (a: b: a < b) [ "b" "a" "C" ]) (builtins.sort (a: b: a < b) [ ]) ]
