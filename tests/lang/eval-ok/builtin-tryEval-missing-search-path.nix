# a `<name>` missing from the search path is caught by tryEval, as in Nix
[ (builtins.tryEval <missing>) (builtins.tryEval <missing/file.nix>) (builtins.tryEval (builtins.pathExists <missing>)) ]
