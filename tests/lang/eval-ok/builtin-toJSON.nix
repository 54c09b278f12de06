# toJSON of nested values with escapes
builtins.toJSON { b = [ 1 true null "q\"\n\t\\" 1.5 ]; a = { }; c = [ ]; }
