# ++ binds tighter than * and +
builtins.length [ 1 ] * 2 + builtins.length ([ 1 ] ++ [ 2 ])
