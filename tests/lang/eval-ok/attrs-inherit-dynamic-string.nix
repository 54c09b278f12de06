# `inherit ${"a"};` and `inherit (s) ${"b"};`: a plain string in `${ }` is a static name
let
  a = 1;
  s = { b = 2; c = 3; };
in
{ inherit ${"a"}; inherit (s) ${"b"} c; nested = let inherit (s) ${''c''}; in c; }
