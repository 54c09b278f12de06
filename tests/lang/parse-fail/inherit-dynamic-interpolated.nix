# `inherit ${"...${x}"}` interpolates, so it is a dynamic name and refused, as in Nix
let a = 1; x = "a"; in { inherit ${"${x}"}; }
