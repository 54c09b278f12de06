# any and all, including on empty lists
[ (builtins.any (x: x > 2) [ 1 3 ]) (builtins.any (x: x > 5) [ 1 3 ]) (builtins.all (x: x > 0) [ 1 3 ]) (builtins.all (x: x > 1) [ 1 3 ]) (builtins.any (x: true) [ ]) (builtins.all (x: false) [ ]) ]
