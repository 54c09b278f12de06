# partition splits into right and wrong
[ (builtins.partition (x: x > 2) [ 1 5 2 3 ]) (builtins.partition (x: true) [ ]) ]
