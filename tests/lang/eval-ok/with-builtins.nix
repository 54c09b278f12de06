# with builtins gives unqualified builtin names
with builtins; [ (length [ 1 2 3 ]) (head [ "h" ]) (typeOf 1) ]
