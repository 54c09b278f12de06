# 64-bit integer overflow is an error (as in current Nix; Nix 2.8 wraps around)
9223372036854775807 + 1
