# float literal forms: 1.5, .5, 1., exponents with e and E
[ 1.5 .5 1. 1.5e3 1.5E3 2.50 0.25e-2 1.e2 ]
