# with does not shadow top-level builtins like map
with { map = f: xs: "mine"; true = false; }; [ (map (x: x + 1) [ 1 2 ]) true ]
