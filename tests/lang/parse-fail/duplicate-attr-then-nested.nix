# a non-set value then a nested path under it
{ a = 1; a.b = 2; }
