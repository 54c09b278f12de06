# sort comparator returning a non-bool
builtins.sort (a: b: 1) [ 2 1 ]
