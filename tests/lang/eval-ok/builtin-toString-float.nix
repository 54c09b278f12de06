# toString on floats uses %f style with 6 decimals
[ (toString 1.5) (toString (1.0 / 3)) (toString 1.0e8) (toString 1.0e-7) (toString (-2.0)) (toString 0.0) ]
