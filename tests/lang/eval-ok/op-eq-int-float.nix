# ints and floats compare numerically with ==
[ (1 == 1.0) (1 != 1.0) (2 == 2.5) ([ 1 ] == [ 1.0 ]) (0 == -0.0) ]
