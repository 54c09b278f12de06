# toJSON of floats
builtins.toJSON [ 1.5 (1.0 / 3) 1.0e8 3.0 ]
