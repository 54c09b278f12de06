# substring including out-of-range and negative length
[ (builtins.substring 1 3 "abcdef") (builtins.substring 1 100 "abc") (builtins.substring 5 2 "abc") (builtins.substring 1 (-1) "abcdef") (builtins.substring 0 0 "abc") (builtins.substring 3 1 "abc") ]
