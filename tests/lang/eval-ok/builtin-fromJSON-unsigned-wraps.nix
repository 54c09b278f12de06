# fromJSON reads integers from 2^63 to 2^64 - 1 as unsigned and wraps them, as Nix 2.8 does; larger ones are floats
[
  (builtins.fromJSON "9223372036854775807")
  (builtins.fromJSON "9223372036854775808")
  (builtins.fromJSON "18446744073709551615")
  (builtins.fromJSON "18446744073709551616")
  (builtins.fromJSON "-9223372036854775808")
  (builtins.fromJSON "-9223372036854775809")
]
