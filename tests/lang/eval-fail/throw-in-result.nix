# a throw hidden in the result is forced by --strict
{ a = 1; b = [ 2 (throw "deep in result") ]; }
