# a float literal too large for 64 bits is refused, as in Nix ("invalid float"); it used to be `inf`
[ 1.5 0.1e400 ]
