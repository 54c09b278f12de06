# a nonzero float literal too small for a normal 64-bit float is refused, as Nix's strtod check does
[ 0.0e-400 1.0e-310 ]
