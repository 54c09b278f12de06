# floats print like C %g with 6 significant digits
[ (1.0 / 3) 1.0e8 100000.0 1000000.0 123456789.0 1.0e-5 0.0001 (2.0 / 3) 3.0 (0.1 + 0.2) ]
