# builtins is a set containing the builtin functions
[ (builtins ? map) (builtins ? length) (builtins ? noSuchBuiltin) (builtins.typeOf builtins.head) ]
