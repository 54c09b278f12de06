# inherit and inherit (e) inside let
let s = { p = 1; q = 2; }; inherit (s) p q; in let inherit p; in p + q
