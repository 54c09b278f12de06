# seq forces shallowly, deepSeq deeply
[ (builtins.seq { a = throw "x"; } 2) (builtins.seq [ (throw "x") ] 3) (builtins.deepSeq [ 1 { a = 2; } ] 4) (builtins.tryEval (builtins.deepSeq [ (throw "x") ] 5)).success ]
