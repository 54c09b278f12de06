# map over lists, including empty and nested
[ (map (x: x * 2) [ 1 2 3 ]) (map (x: x) [ ]) (map builtins.length [ [ ] [ 1 ] [ 1 2 ] ]) ]
