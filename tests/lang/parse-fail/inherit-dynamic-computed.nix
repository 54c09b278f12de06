# `inherit ${...}` takes only a plain string: a computed name is refused, as in Nix
let a = 1; in { inherit ${"a" + ""}; }
