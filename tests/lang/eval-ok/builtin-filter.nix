# filter keeps elements where predicate is true
[ (builtins.filter (x: x > 2) [ 1 5 2 3 ]) (builtins.filter (x: false) [ 1 ]) (builtins.filter (x: true) [ ]) ]
