# + on attribute sets
{ a = 1; } + { b = 2; }
