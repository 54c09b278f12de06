# the smallest integer divided by -1 does not fit; Nix 2.8 fails too (it wraps +, - and * only)
(-9223372036854775807 - 1) / (-1)
