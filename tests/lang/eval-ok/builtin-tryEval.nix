# tryEval catches throw and assert failures
[ (builtins.tryEval (throw "x")) (builtins.tryEval (assert false; 1)) (builtins.tryEval 42) (builtins.tryEval "ok") ]
