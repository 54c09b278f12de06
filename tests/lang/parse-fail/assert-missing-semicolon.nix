# assert without ;
assert true 1
