# identifiers with dashes, primes and underscores as keys
{ a-b = 1; c' = 2; _d = 3; e_f-g'' = 4; }
