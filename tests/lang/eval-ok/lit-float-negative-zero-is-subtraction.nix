# -0.0 is 0 - 0.0 so it prints as 0; negative floats
[ (-0.0) (-1.5) (0.0 - 2.25) (-(1.0 / 3)) ]
