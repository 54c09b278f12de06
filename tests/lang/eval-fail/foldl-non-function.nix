# foldl' with a non-function
builtins.foldl' 1 0 [ 1 ]
