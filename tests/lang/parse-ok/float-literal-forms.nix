# float literal forms
[ 1.5 .5 1. 1.5e3 1.5E-3 0.0 00.5 ]
