# tryEval catches throw, assert and a missing search path, not a missing attribute (as Nix 2.8)
builtins.tryEval ({ a = 1; }.b)
