# arithmetic on floats and mixed int/float
[ (1 + 1.5) (5 - 2.5) (2 * 1.5) (7.0 / 2) (7 / 2.0) (1 / 4.0) (0.5 * 4) (builtins.typeOf (2 * 1.0)) ]
