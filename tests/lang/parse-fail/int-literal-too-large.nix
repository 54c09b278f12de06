# an integer literal above 2^63 - 1 is refused, as in Nix ("invalid integer")
[ 9223372036854775807 9223372036854775808 ]
